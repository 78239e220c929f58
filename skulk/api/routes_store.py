"""Model store routes: /store/* on every node, answered by the store host (proxied over HTTP
from other nodes); /store/storage and the purge are this node's own."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.routing import RouteSpec
from skulk.api.validation import parse_json_body
from skulk.store.errors import StoreNotConfigured
from skulk.store.service import StoreService
from skulk.types.ids import SafeModelId, validate_model_id

_STORE_ERRORS = {503: "Store not configured / Store unreachable"}


class PurgeStagingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    model_id: SafeModelId | None = Field(default=None, alias="modelId")


def _store(request: Request) -> StoreService:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise StoreNotConfigured()
    return store


def _backend(request: Request) -> Any:
    return _store(request).backend()


def _model_id(request: Request) -> str:
    """The path's model id, refused with a 400 before it reaches the store (it names a directory)."""
    return validate_model_id(request.path_params["model_id"])


async def get_health(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).health())


async def get_registry(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).registry())


async def get_downloads(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).downloads())


async def post_download(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).request_download(_model_id(request)))


async def get_download_status(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).download_status(_model_id(request)))


async def delete_model(request: Request) -> JSONResponse:
    return JSONResponse(await _backend(request).delete(_model_id(request)))


async def post_purge_staging(request: Request) -> JSONResponse:
    raw = (await request.body()).strip()
    body = PurgeStagingRequest.model_validate(parse_json_body(raw) if raw else {})
    store = _store(request)
    if store.config is None:
        raise StoreNotConfigured()
    return JSONResponse(await store.request_purge(body.model_id))


async def get_storage(request: Request) -> JSONResponse:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise StoreNotConfigured()
    return JSONResponse(await store.storage_report())


_MODEL = "/store/models/{model_id:path}"
ROUTES = [
    RouteSpec("GET", "/store/health", get_health, "Store host disk usage", "store",
              status_codes=(200, 503), responses=_STORE_ERRORS),
    RouteSpec("GET", "/store/registry", get_registry, "Models in the store, file by file", "store",
              status_codes=(200, 503), responses=_STORE_ERRORS),
    RouteSpec("GET", "/store/downloads", get_downloads, "Active store downloads from the hub", "store",
              status_codes=(200, 503), responses=_STORE_ERRORS),
    RouteSpec("POST", f"{_MODEL}/download", post_download, "Have the store host download a model", "store",
              status_codes=(200, 400, 404, 503), responses=_STORE_ERRORS),
    RouteSpec("GET", f"{_MODEL}/download/status", get_download_status, "A store download's status", "store",
              status_codes=(200, 400, 404, 503), responses=_STORE_ERRORS),
    RouteSpec("DELETE", _MODEL, delete_model, "Delete a model from the store", "store",
              status_codes=(200, 400, 404, 503), responses=_STORE_ERRORS),
    RouteSpec("POST", "/store/purge-staging", post_purge_staging, "Drop idle staged copies on every node",
              "store", request_model=PurgeStagingRequest, status_codes=(200, 400, 503), responses=_STORE_ERRORS),
    RouteSpec("GET", "/store/storage", get_storage, "This node's staged models and disk", "store",
              status_codes=(200, 503)),
]
