"""This node's own odds and ends: onboarding flag, identity, remote-access URLs, Tailscale, folder picker."""

import socket
from pathlib import Path
from typing import Any

import httpx
import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.auth import forwarded_auth  # peers are asked with the caller's own key
from skulk.api.browse import ALLOWED_ROOTS, list_directories
from skulk.api.peers import FANOUT_TIMEOUT_S, resolve_peer
from skulk.api.port import ClusterPort
from skulk.api.remote_access import first_ipv4, remote_access
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import NotFound, SkulkError, Unavailable
from skulk.probe import tailscale

DEFAULT_API_PORT = 52415
TAILSCALE_PATH = "/v1/connectivity/tailscale"


class OnboardingBody(BaseModel):
    completed: bool = Field(True, description="Mark onboarding done (true) or undone (false)")


class OnboardingState(BaseModel):
    completed: bool


class NodeIdentityInfo(BaseModel):
    nodeId: str
    hostname: str
    ipAddress: str | None = Field(description="First non-loopback, non-link-local IPv4 of this node")


class DirectoryEntry(BaseModel):
    name: str
    path: str


class DirectoryListing(BaseModel):
    path: str
    directories: list[DirectoryEntry]
    truncated: bool = False


class PeerError(SkulkError):
    status = 502


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def peer_client() -> httpx.AsyncClient:
    """The client for proxied calls (a seam: tests swap in a mock transport)."""
    return httpx.AsyncClient(timeout=FANOUT_TIMEOUT_S, trust_env=False, headers=forwarded_auth())


def _own_beat(port: ClusterPort) -> Any:
    return port.live_telemetry()[0].get(port.node_id)


def own_ips(port: ClusterPort) -> list[str]:
    """This node's addresses: the interfaces in state (nodeNetwork), then its latest heartbeat's."""
    network = port.state.node_network.get(port.node_id)
    ips = [i.ip_address for i in network.interfaces] if network is not None else []
    beat = _own_beat(port)
    ips += [i.ip_address for i in beat.interfaces] if beat is not None else []
    return list(dict.fromkeys(ips))


def _api_port(request: Request, port: ClusterPort) -> int:
    beat = _own_beat(port)
    if beat is not None and beat.api_port:
        return beat.api_port
    configured = getattr(getattr(port, "settings", None), "api_port", None)
    return configured if isinstance(configured, int) else request.url.port or DEFAULT_API_PORT


def _flag(request: Request) -> Path | None:
    found = getattr(_port(request), "onboarding_flag", None)
    return Path(found) if found is not None else None


async def get_onboarding(request: Request) -> JSONResponse:
    flag = _flag(request)
    return JSONResponse({"completed": flag is not None and flag.is_file()})


def _write_flag(flag: Path, completed: bool) -> None:
    if completed:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


async def post_onboarding(request: Request) -> JSONResponse:
    """Set or clear the flag; an empty body means completed."""
    completed = (await read_json_model(request, OnboardingBody)).completed if (await request.body()).strip() else True
    flag = _flag(request)
    if flag is None:
        raise Unavailable("This node keeps no onboarding flag")
    try:
        _write_flag(flag, completed)
    except OSError as exc:
        raise Unavailable(f"Cannot write {flag}: {exc.strerror or exc}") from exc
    return JSONResponse({"completed": completed})


async def get_node_identity(request: Request) -> JSONResponse:
    port = _port(request)
    beat = _own_beat(port)
    hostname = (beat.identity.hostname if beat is not None else "") or socket.gethostname()
    return JSONResponse({"nodeId": port.node_id, "hostname": hostname, "ipAddress": first_ipv4(own_ips(port))})


async def local_tailscale() -> dict[str, Any]:
    return await trio.to_thread.run_sync(tailscale.read_status)


async def get_remote_access(request: Request) -> JSONResponse:
    port = _port(request)
    status = await local_tailscale()
    return JSONResponse(remote_access(own_ips(port), _api_port(request, port), status))


async def _peer_tailscale(port: ClusterPort, node_id: str) -> dict[str, Any]:
    """The peer's own answer to GET /v1/connectivity/tailscale, found like the topology probe."""
    async with peer_client() as client:
        url = None
        with trio.move_on_after(FANOUT_TIMEOUT_S):
            url = await resolve_peer(client, port, node_id)  # NotFound: unknown or not answering
        if url is None:
            raise NotFound(f"Node {node_id} did not answer within {FANOUT_TIMEOUT_S:.0f} s", param="node_id")
        try:
            resp = await client.get(url + TAILSCALE_PATH)
            body = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise PeerError(f"Node {node_id} did not answer about Tailscale: {exc}", param="node_id") from exc
    if not isinstance(body, dict):
        raise PeerError(f"Node {node_id} answered {resp.status_code} about Tailscale", param="node_id")
    return body


async def get_tailscale(request: Request) -> JSONResponse:
    port = _port(request)
    node_id = request.query_params.get("node_id") or port.node_id
    if node_id != port.node_id:
        return JSONResponse(await _peer_tailscale(port, node_id))
    return JSONResponse({**await local_tailscale(), "nodeId": port.node_id})


async def get_browse(request: Request) -> JSONResponse:
    raw = request.query_params.get("path")
    return JSONResponse(await trio.to_thread.run_sync(list_directories, raw))


_ROOTS = ", ".join(ALLOWED_ROOTS)
ROUTES = [
    RouteSpec("GET", "/onboarding", get_onboarding, "Whether the dashboard's onboarding was completed here",
              "node", response_model=OnboardingState),
    RouteSpec("POST", "/onboarding", post_onboarding, "Mark onboarding completed (or not); an empty body means yes",
              "node", request_model=OnboardingBody, response_model=OnboardingState,
              status_codes=(200, 400, 422, 503)),
    RouteSpec("GET", "/node/identity", get_node_identity, "This node's id, hostname and first LAN IPv4", "node",
              response_model=NodeIdentityInfo),
    RouteSpec("GET", "/v1/connectivity/remote-access", get_remote_access,
              "URLs to reach this node from elsewhere: Tailscale name or address, else the LAN address", "node"),
    RouteSpec("GET", TAILSCALE_PATH, get_tailscale,
              "This node's `tailscale status` summary, or (?node_id=) another node's", "node",
              status_codes=(200, 404, 502)),
    RouteSpec("GET", "/filesystem/browse", get_browse,
              f"Subfolders of ?path= (an absolute path under {_ROOTS}); hidden folders skipped", "node",
              response_model=DirectoryListing, status_codes=(200, 400, 403, 404)),
]
