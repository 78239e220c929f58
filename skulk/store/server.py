"""The store host's HTTP server: registry, health, download jobs and the model files themselves
(Range requests supported, so a worker resumes a cut-off copy). In a cluster with a secret every
request must carry the store token derived from it (`Authorization: Bearer <token>`)."""

import hashlib
import hmac
import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from skulk.errors import SkulkError
from skulk.faults import count
from skulk.store.host import StoreHost

log = logging.getLogger(__name__)


class _ModelFile(FileResponse):
    chunk_size = 1024 * 1024  # fewer trips through the event loop for multi-GB weights


def _error(exc: SkulkError) -> JSONResponse:
    body = {"error": {"message": exc.message, "type": type(exc).__name__, "param": exc.param, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status)


def store_token(cluster_secret: str | None) -> str | None:
    """The bearer token the store asks for: HMAC of the cluster secret (None: no secret, no token)."""
    if not cluster_secret:
        return None
    return hmac.new(cluster_secret.encode(), b"skulk-store-v1", hashlib.sha256).hexdigest()


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def make_store_app(host: StoreHost, token: str | None = None) -> Starlette:
    def guarded(fn):
        async def endpoint(request: Request):
            if not _authorized(request, token):
                count("store.token_refused", request.client.host if request.client else "")
                return JSONResponse({"error": {"message": "the store token is missing or wrong",
                                               "type": "Unauthorized", "param": None, "code": 401}}, status_code=401)
            try:
                return await fn(request)
            except SkulkError as exc:
                return _error(exc)
        return endpoint

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(host.health())

    async def registry(request: Request) -> JSONResponse:
        return JSONResponse(host.registry_doc())

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"models": [e.model_id for e in host.registry.entries()]})

    async def entry(request: Request) -> JSONResponse:
        return JSONResponse(host.entry(request.path_params["model_id"]).model_dump())

    async def file(request: Request) -> FileResponse:
        path = host.file_path(request.path_params["dir_name"], request.path_params["path"])
        return _ModelFile(path)

    async def start_download(request: Request) -> JSONResponse:
        return JSONResponse(host.request_download(request.path_params["model_id"]))

    async def download_status(request: Request) -> JSONResponse:
        return JSONResponse(host.download_status(request.path_params["model_id"]))

    async def downloads(request: Request) -> JSONResponse:
        return JSONResponse(host.downloads())

    async def delete(request: Request) -> JSONResponse:
        return JSONResponse(await host.delete(request.path_params["model_id"]))

    routes = [
        Route("/health", guarded(health), methods=["GET"]),
        Route("/registry", guarded(registry), methods=["GET"]),
        Route("/models", guarded(models), methods=["GET"]),
        Route("/downloads", guarded(downloads), methods=["GET"]),
        Route("/files/{dir_name}/{path:path}", guarded(file), methods=["GET", "HEAD"]),
        Route("/models/{model_id:path}/files", guarded(entry), methods=["GET"]),
        Route("/models/{model_id:path}/download/status", guarded(download_status), methods=["GET"]),
        Route("/models/{model_id:path}/download", guarded(start_download), methods=["POST"]),
        Route("/models/{model_id:path}", guarded(delete), methods=["DELETE"]),
    ]
    return Starlette(routes=routes)


async def serve_store(app: Any, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    await serve(app, config, task_status=task_status)  # type: ignore[arg-type]
