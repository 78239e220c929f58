"""A tiny reverse proxy for tests: serves a node under a path prefix, stripping it, like nginx would."""

import asyncio
import threading

HEAD_LIMIT = 64 * 1024


class PrefixProxy:
    """Forwards http://127.0.0.1:<port><prefix>/x to <backend>/x, one request per connection.

    Every request path it saw is kept in `seen`, so a test can check the page never asked for a
    URL outside the prefix.
    """

    def __init__(self, backend_port: int, prefix: str):
        self.backend_port = backend_port
        self.prefix = prefix.rstrip("/")
        self.seen: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefix-proxy", daemon=True)

    def start(self) -> "PrefixProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _rewrite(self, head: bytes) -> bytes | None:
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        self.seen.append(path)
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return None
        lines[0] = f"{method} {path[len(self.prefix):] or '/'} {version}"
        # One request per connection keeps the rewriting simple: the backend closes after answering.
        lines = [line for line in lines if not line.lower().startswith("connection:")]
        lines.insert(1, "Connection: close")
        return "\r\n".join(lines).encode("latin-1")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            rewritten = self._rewrite(head[:-4])
            if rewritten is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
            up_writer.write(rewritten + b"\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass
