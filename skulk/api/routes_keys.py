"""API keys: create (the key is shown once, only its salted hash is replicated), list, revoke."""

from datetime import datetime, timedelta, timezone

import trio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import NotFound, Unavailable
from skulk.types import commands as cmd
from skulk.types.access import MAX_MODELS, MAX_NAME_LEN, ApiKeyRecord, Role, hash_key, new_key, new_key_id, new_salt

REPLICATION_WAIT_S = 10.0  # the master answers in milliseconds; a session change takes seconds
MAX_EXPIRY_S = 10 * 365 * 24 * 3600


class CreateKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_NAME_LEN)
    role: Role = "user"
    models: list[str] | None = Field(default=None, max_length=MAX_MODELS)
    project: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LEN)
    expires_in_seconds: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_S)


def make_record(params: CreateKeyParams, now: datetime, key_id: str | None = None) -> tuple[str, ApiKeyRecord]:
    """A fresh key and its record (salted scrypt hash): the key itself goes only to the caller."""
    key_id = key_id or new_key_id()
    key, salt = new_key(key_id), new_salt()
    expires = now + timedelta(seconds=params.expires_in_seconds) if params.expires_in_seconds else None
    record = ApiKeyRecord(id=key_id, name=params.name, role=params.role, models=params.models,
                          project=params.project, created_at=now, expires_at=expires, salt=salt,
                          key_hash=hash_key(key, salt))
    return key, record


async def wait_for(port: ClusterPort, present: bool, key_id: str) -> None:
    """Until this node's replica shows the key (or its absence): then it holds here at once."""
    with trio.move_on_after(REPLICATION_WAIT_S):
        while (key_id in port.state.api_keys) != present:
            await trio.sleep(0.05)
        return
    raise Unavailable("the master did not confirm the key change in time; retry")


async def post_key(request: Request) -> JSONResponse:
    port: ClusterPort = request.app.state.cluster
    params = await read_json_model(request, CreateKeyParams)
    key, record = await trio.to_thread.run_sync(make_record, params, datetime.now(timezone.utc))
    await port.send_command(cmd.CreateApiKey(record=record))
    await wait_for(port, True, record.id)
    body = {"key": key, **record.public()}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


async def get_keys(request: Request) -> JSONResponse:
    port: ClusterPort = request.app.state.cluster
    records = sorted(port.state.api_keys.values(), key=lambda r: r.created_at)
    return JSONResponse({"data": [r.public() for r in records]})


async def delete_key(request: Request) -> JSONResponse:
    port: ClusterPort = request.app.state.cluster
    key_id = request.path_params["key_id"]
    if key_id not in port.state.api_keys:
        raise NotFound(f"API key not found: {key_id[:64]}")
    await port.send_command(cmd.RevokeApiKey(key_id=key_id))
    await wait_for(port, False, key_id)
    return JSONResponse({"id": key_id, "revoked": True})


ROUTES = [
    RouteSpec("POST", "/v1/keys", post_key, "Create an API key (shown only in this answer)", "access",
              request_model=CreateKeyParams, status_codes=(201, 400, 401, 403)),
    RouteSpec("GET", "/v1/keys", get_keys, "List API keys (no secrets)", "access"),
    RouteSpec("DELETE", "/v1/keys/{key_id}", delete_key, "Revoke an API key", "access",
              status_codes=(200, 404)),
]
