"""The ingest_url shipper against a real HTTP server on 127.0.0.1, and against dead ends."""

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio

import skulk.node.log_shipper as log_shipper
from skulk.node.log_shipper import CONTENT_TYPE, LineQueue, LogShipper, should_ship

LOGGER = "skulk.test.shipping"


class Ingest(BaseHTTPRequestHandler):
    """Records every POST (content type, body lines) on the server and answers 204."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.posts.append((self.headers["content-type"], body.decode().splitlines()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def ingest_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    server.posts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until(predicate: Callable[[], object], timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


@pytest.fixture
def logger():
    lg = logging.getLogger(LOGGER)
    lg.setLevel(logging.INFO)
    yield lg
    lg.setLevel(logging.NOTSET)


def shipped_lines(server) -> list[dict]:
    return [json.loads(line) for _, lines in list(server.posts) for line in lines]


def test_lines_arrive_as_json_with_their_fields(logger):
    shipper = LogShipper("12D3KooWnode")

    async def scenario(server):
        shipper.configure(True, f"http://127.0.0.1:{server.server_port}/insert/jsonline")
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.run)
            logger.info("hello %s", "there")
            logger.warning("second")
            logging.getLogger("httpx").warning("never shipped")
            await wait_until(lambda: len(shipped_lines(server)) >= 2)
            nursery.cancel_scope.cancel()

    with ingest_server() as server:
        trio.run(scenario, server)
    docs = [d for d in shipped_lines(server) if d["logger"] == LOGGER]
    assert [(d["level"], d["msg"]) for d in docs] == [("INFO", "hello there"), ("WARNING", "second")]
    assert all(d["nodeId"] == "12D3KooWnode" and d["ts"].endswith("+00:00") for d in docs)
    assert not any(d["logger"].startswith(("httpx", "skulk.node.log_shipper")) for d in shipped_lines(server))
    assert {ctype for ctype, _ in server.posts} == {CONTENT_TYPE}
    assert shipper.counters["log_lines_shipped"] >= 2 and shipper.counters["log_ship_errors"] == 0
    assert shipper._handler not in logging.getLogger().handlers  # removed on shutdown


def test_switched_live_and_lines_left_at_shutdown_are_sent(logger):
    shipper = LogShipper("n1")

    async def scenario(server):
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.run)
            logger.info("before: not shipped")  # no URL yet
            shipper.configure(True, f"http://127.0.0.1:{server.server_port}/")
            logger.info("during")
            nursery.cancel_scope.cancel()  # the final flush still sends "during"
        shipper.configure(False, f"http://127.0.0.1:{server.server_port}/")
        logger.info("after: not shipped")

    with ingest_server() as server:
        trio.run(scenario, server)
    assert [d["msg"] for d in shipped_lines(server) if d["logger"] == LOGGER] == ["during"]


def test_an_unreachable_url_neither_blocks_nor_crashes_and_counts_drops(logger, caplog):
    shipper = LogShipper("n1", capacity=5)
    warnings = []

    async def scenario():
        shipper.configure(True, f"http://127.0.0.1:{closed_port()}/insert/jsonline")
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.run)
            with trio.fail_after(1):  # logging only queues: a burst returns at once
                for i in range(20):
                    logger.warning("line %d", i)
            await wait_until(lambda: shipper.errors >= 1)
            warnings.extend(r for r in caplog.records if r.name == log_shipper.__name__)
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.WARNING, logger=log_shipper.__name__):
        trio.run(scenario)
    assert shipper.counters["log_lines_dropped"] >= 15 and shipper.counters["log_lines_shipped"] == 0
    assert len(warnings) == 1 and "shipping logs to http://127.0.0.1" in warnings[0].getMessage()


def test_a_server_that_never_answers_does_not_hold_up_shutdown(logger, monkeypatch):
    monkeypatch.setattr(log_shipper, "FINAL_FLUSH_S", 0.2)
    shipper = LogShipper("n1")

    async def scenario():
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        shipper.configure(True, f"http://127.0.0.1:{listener.getsockname()[1]}/")
        with trio.fail_after(5), listener:
            async with trio.open_nursery() as nursery:
                await nursery.start(shipper.run)
                logger.warning("stuck")
                conn, _ = await listener.accept()  # the POST is under way, and the loop still runs
                with conn:
                    assert await conn.recv(4096)  # its request arrives; no answer ever comes
                    logger.warning("logging goes on meanwhile")
                    nursery.cancel_scope.cancel()  # shutdown: the final flush gives up after 0.2 s

    trio.run(scenario)
    assert shipper.counters["log_lines_shipped"] == 0


def test_error_reports_are_limited_to_one_a_minute(caplog):
    now = [1000.0]
    shipper = LogShipper("n1", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger=log_shipper.__name__):
        for step in (0, 10, 30, 61):  # failures at 1000, 1010, 1040, 1101
            now[0] += step
            shipper._failed("http://x/", OSError("refused"))
    assert len([r for r in caplog.records if r.name == log_shipper.__name__]) == 2
    assert shipper.errors == 4 and shipper._retry_at > now[0]


def test_queue_drops_the_oldest_and_gives_back_what_fits():
    q = LineQueue(3)
    for line in "abcd":
        q.put(line)
    assert q.dropped == 1 and q.take(2) == ["b", "c"]
    q.put("e")
    q.give_back(["b", "c"])  # room for one: the newer of the two returns, in front
    assert q.take(10) == ["c", "d", "e"] and q.dropped == 2


def test_the_shipper_and_its_http_client_are_never_shipped():
    assert not should_ship("httpx") and not should_ship("httpcore.connection")
    assert not should_ship(log_shipper.__name__)
    assert should_ship("skulk.app") and should_ship("httpxlike")


def test_put_config_switches_shipping_and_runner_logs_live(tmp_path, monkeypatch):
    from skulk.config import Settings, resolve_paths
    from skulk.node.ops import KV_BACKEND_ENV, NodeOps

    monkeypatch.setenv(KV_BACKEND_ENV, "default")  # set at launch: apply_live leaves os.environ alone
    paths = resolve_paths(Settings(), {}, user_home=tmp_path)
    ops = NodeOps("n1", Settings(), paths, router=None)
    assert ops.log_shipper.url == "" and ops.runner_log_config().directory == paths.runner_logs_dir
    on = {"enabled": True, "ingest_url": "http://127.0.0.1:9428/insert/jsonline", "runner_log_max_bytes": 0}
    try:
        ops.apply_live(Settings.model_validate({"logging": on}))
        assert ops.log_shipper.url == on["ingest_url"] and ops.runner_log_config() is None
        ops.apply_live(Settings.model_validate({"logging": {**on, "enabled": False}}))
        assert ops.log_shipper.url == ""  # a URL alone ships nothing
    finally:
        ops.apply_live(Settings())  # the stdout sink off again


def test_an_external_shipper_gets_json_stdout_from_boot_and_no_built_in_shipping(tmp_path, monkeypatch):
    from skulk.config import Settings, resolve_paths
    from skulk.node.logs import structured_logging_enabled
    from skulk.node.ops import KV_BACKEND_ENV, LOGGING_EXTERNAL_ENV, NodeOps

    monkeypatch.setenv(KV_BACKEND_ENV, "default")
    monkeypatch.setenv(LOGGING_EXTERNAL_ENV, "1")
    paths = resolve_paths(Settings(), {}, user_home=tmp_path)
    ops = NodeOps("n1", Settings(), paths, router=None)  # logging.enabled is false in the file
    try:
        assert structured_logging_enabled() and ops.log_shipper.url == ""
        on = {"enabled": True, "ingest_url": "http://127.0.0.1:9428/insert/jsonline"}
        ops.apply_live(Settings.model_validate({"logging": on}))
        assert structured_logging_enabled() and ops.log_shipper.url == ""  # Vector ships, not us
    finally:
        monkeypatch.delenv(LOGGING_EXTERNAL_ENV)
        ops.launch_env.pop(LOGGING_EXTERNAL_ENV)
        ops.apply_live(Settings())
    assert not structured_logging_enabled()
