"""Structured logs: with `logging.enabled`, every record is also one JSON object on stdout.

The human-readable stderr handler set up by the CLI stays; this adds a second sink a log
shipper (Vector, VictoriaLogs) can read line by line.
"""

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, nodeId (+ exc when there is one)."""

    def __init__(self, node_id: str | None = None):
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "nodeId": self.node_id,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _StructuredHandler(logging.StreamHandler):
    """Marker class, so the handler can be found again and removed."""


def set_structured_logging(enabled: bool, node_id: str | None, stream: TextIO | None = None) -> bool:
    """Add (or remove) the JSON-lines handler on the root logger; True if it is now on."""
    root = logging.getLogger()
    current = [h for h in root.handlers if isinstance(h, _StructuredHandler)]
    if not enabled:
        for handler in current:
            root.removeHandler(handler)
        return False
    if current:
        for handler in current:
            assert isinstance(handler.formatter, JsonLineFormatter)
            handler.formatter.node_id = node_id
        return True
    handler = _StructuredHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonLineFormatter(node_id))
    root.addHandler(handler)
    return True


def structured_logging_enabled() -> bool:
    return any(isinstance(h, _StructuredHandler) for h in logging.getLogger().handlers)
