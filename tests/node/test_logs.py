"""Structured JSON log lines: the formatter and switching the stdout sink on and off."""

import io
import json
import logging

from skulk.node.logs import JsonLineFormatter, set_structured_logging, structured_logging_enabled


def record(msg, *args, level=logging.WARNING, exc_info=None):
    return logging.LogRecord("skulk.test", level, __file__, 1, msg, args, exc_info)


def test_one_json_object_per_record_with_the_node_id():
    line = JsonLineFormatter("12D3KooWnode").format(record("free %d of %s", 3, "ünïcode"))
    doc = json.loads(line)
    assert "\n" not in line
    assert set(doc) == {"ts", "level", "logger", "msg", "nodeId"}
    assert doc["level"] == "WARNING" and doc["logger"] == "skulk.test" and doc["nodeId"] == "12D3KooWnode"
    assert doc["msg"] == "free 3 of ünïcode" and doc["ts"].endswith("+00:00")


def test_exceptions_are_kept_on_the_same_line():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys
        line = JsonLineFormatter(None).format(record("failed", exc_info=sys.exc_info()))
    doc = json.loads(line)
    assert "\n" not in line and "ValueError: bad" in doc["exc"] and doc["nodeId"] is None


def test_the_stdout_sink_switches_on_and_off():
    out = io.StringIO()
    logger = logging.getLogger("skulk.test.sink")
    logger.setLevel(logging.INFO)
    try:
        assert set_structured_logging(True, "n1", stream=out) and structured_logging_enabled()
        set_structured_logging(True, "n2", stream=out)  # again: no second handler, new id
        logger.info("hello %s", "there")
        lines = out.getvalue().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["nodeId"] == "n2"
    finally:
        set_structured_logging(False, None)
    assert not structured_logging_enabled()
    logger.info("not captured")
    assert len(out.getvalue().splitlines()) == 1
