"""How a node talks to the store: in process on the store host, over HTTP everywhere else.

Both backends answer the same questions with the same JSON, so the API's /store/* routes and
the stager never care which node they run on.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from skulk.errors import BadRequest, Conflict, NotFound, SkulkError
from skulk.store.errors import ModelNotInStore, StagingFailed, StoreUnreachable
from skulk.store.host import StoreHost
from skulk.store.registry import RegistryEntry

_TIMEOUT = httpx.Timeout(10.0, read=60.0)
_BY_STATUS = {400: BadRequest, 404: NotFound, 409: Conflict}


class StoreBackend(Protocol):
    url: str

    async def health(self) -> dict[str, Any]: ...
    async def registry(self) -> dict[str, Any]: ...
    async def downloads(self) -> dict[str, Any]: ...
    async def entry(self, model_id: str) -> RegistryEntry: ...
    async def request_download(self, model_id: str) -> dict[str, Any]: ...
    async def download_status(self, model_id: str) -> dict[str, Any]: ...
    async def delete(self, model_id: str) -> dict[str, Any]: ...


class LocalBackend:
    """The store host asking itself."""

    def __init__(self, host: StoreHost, url: str):
        self.host, self.url = host, url

    async def health(self) -> dict[str, Any]:
        return self.host.health()

    async def registry(self) -> dict[str, Any]:
        return self.host.registry_doc()

    async def downloads(self) -> dict[str, Any]:
        return self.host.downloads()

    async def entry(self, model_id: str) -> RegistryEntry:
        return self.host.entry(model_id)

    async def request_download(self, model_id: str) -> dict[str, Any]:
        return self.host.request_download(model_id)

    async def download_status(self, model_id: str) -> dict[str, Any]:
        return self.host.download_status(model_id)

    async def delete(self, model_id: str) -> dict[str, Any]:
        return await self.host.delete(model_id)


def _quote(model_id: str) -> str:
    return httpx.URL(f"/models/{model_id}").raw_path.decode()


class HttpBackend:
    """Any other node: the store host's HTTP server at `url`."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}  # see server.store_token

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=_TIMEOUT, trust_env=False, headers=self._headers)

    def unreachable(self, exc: Exception) -> StoreUnreachable:
        return StoreUnreachable(f"Store unreachable: the model store at {self.url} did not answer "
                                f"({type(exc).__name__}: {exc})")

    async def _call(self, method: str, path: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                resp = await client.request(method, path)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp.json()

    def _error(self, resp: httpx.Response) -> SkulkError:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"model store at {self.url} answered HTTP {resp.status_code}"
        if resp.status_code == 404 and "not in the store" in message:
            return ModelNotInStore(message, param="model_id")
        cls = _BY_STATUS.get(resp.status_code)
        return cls(message) if cls else StagingFailed(f"model store at {self.url}: {message}")

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def registry(self) -> dict[str, Any]:
        return await self._call("GET", "/registry")

    async def downloads(self) -> dict[str, Any]:
        return await self._call("GET", "/downloads")

    async def entry(self, model_id: str) -> RegistryEntry:
        return RegistryEntry.model_validate(await self._call("GET", f"{_quote(model_id)}/files"))

    async def request_download(self, model_id: str) -> dict[str, Any]:
        return await self._call("POST", f"{_quote(model_id)}/download")

    async def download_status(self, model_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{_quote(model_id)}/download/status")

    async def delete(self, model_id: str) -> dict[str, Any]:
        return await self._call("DELETE", _quote(model_id))

    @contextlib.asynccontextmanager
    async def open_file(self, dir_name: str, path: str, start: int) -> AsyncIterator[httpx.Response]:
        """A streaming response for one file from byte `start` (206, or 200 if Range is ignored)."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        url = httpx.URL(f"/files/{dir_name}/{path}").raw_path.decode()
        try:
            async with self._client() as client, client.stream("GET", url, headers=headers) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise self._error(resp)
                yield resp
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
