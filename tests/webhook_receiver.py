"""A local webhook receiver for tests: records JSON POSTs; can fail or hang on purpose."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        self.fail_first = 0  # answer 500 to this many POSTs first
        self.status = 200  # then this
        self.hang = threading.Event()  # set: hold every request until released
        self.release = threading.Event()
        self.url = ""

    def kinds(self) -> list[str]:
        return [b.get("event") for b in list(self.bodies)]


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            rx.attempts += 1
            if rx.hang.is_set():
                rx.release.wait(30)
                return
            code = 500 if rx.attempts <= rx.fail_first else rx.status
            if code == 200:
                rx.bodies.append(json.loads(body))
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    rx = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    server.daemon_threads = True
    rx.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rx
    finally:
        rx.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
