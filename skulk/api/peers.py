"""Reaching other nodes' HTTP APIs: addresses from their heartbeats, like the topology probe.

A node reports its interfaces and API port every second; a peer's API is the first of those
addresses whose `GET /node_id` answers with the peer's own id.
"""

from typing import Any

import httpx
import trio

from skulk.api.auth import forwarded_auth  # peers are asked with the caller's own key
from skulk.api.port import ClusterPort
from skulk.errors import NotFound, SkulkError
from skulk.types.ids import NodeId

FANOUT_TIMEOUT_S = 5.0


class PeerUnreachable(SkulkError):
    """A live peer that did not answer a proxied request."""

    status = 502


def base_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def candidate_urls(port: ClusterPort, node_id: NodeId) -> list[str]:
    """The addresses a live peer advertises for its API, best guess first."""
    beats, _ = port.live_telemetry()
    hb = beats.get(node_id)
    if hb is None or hb.api_port is None:
        return []
    ips = [i.ip_address for i in hb.interfaces]
    # Loopback last: it only works when the peer is this machine.
    ips.sort(key=lambda ip: ip.startswith("127.") or ip == "::1")
    return [base_url(ip, hb.api_port) for ip in dict.fromkeys(ips)]


async def resolve_peer(client: httpx.AsyncClient, port: ClusterPort, node_id: NodeId) -> str:
    """The base URL at which `node_id` answers as itself; NotFound when none does."""
    urls = candidate_urls(port, node_id)
    if not urls:
        raise NotFound(f"Node {node_id} is not a live peer with an API", param="node_id")
    for url in urls:
        try:
            resp = await client.get(f"{url}/node_id")
            if resp.status_code == 200 and resp.json() == node_id:
                return url
        except (httpx.HTTPError, ValueError):
            continue
    raise NotFound(f"Node {node_id} did not answer at {', '.join(urls)}", param="node_id")


async def fan_out(port: ClusterPort, path: str, local: Any, key: str) -> list[dict[str, Any]]:
    """GET `path` on every live node at once, each body under `key`; this node's is `local`.
    A node that fails or times out keeps its entry, with `ok` false and the error."""
    beats, _ = port.live_telemetry()
    others = sorted(n for n in beats if n != port.node_id)
    results: dict[NodeId, dict[str, Any]] = {}

    async def one(client: httpx.AsyncClient, node_id: NodeId) -> None:
        entry: dict[str, Any] = {"nodeId": node_id, "url": None, "ok": False, key: None, "error": None}
        results[node_id] = entry
        try:
            with trio.fail_after(FANOUT_TIMEOUT_S):
                entry["url"] = await resolve_peer(client, port, node_id)
                resp = await client.get(entry["url"] + path)
                resp.raise_for_status()
                entry[key], entry["ok"] = resp.json(), True
        except trio.TooSlowError:
            entry["error"] = f"timed out after {FANOUT_TIMEOUT_S:.0f} s"
        except (NotFound, httpx.HTTPError, ValueError) as exc:
            entry["error"] = getattr(exc, "message", None) or str(exc) or type(exc).__name__

    async with httpx.AsyncClient(timeout=FANOUT_TIMEOUT_S, trust_env=False, headers=forwarded_auth()) as client:
        async with trio.open_nursery() as nursery:
            for node_id in others:
                nursery.start_soon(one, client, node_id)
    own_urls = candidate_urls(port, port.node_id)
    own = {"nodeId": port.node_id, "url": own_urls[0] if own_urls else None, "ok": True, key: local, "error": None}
    return [own, *(results[n] for n in others)]


async def call_peer(port: ClusterPort, node_id: NodeId, method: str, path: str, *, content: bytes | None = None,
                    timeout: float = FANOUT_TIMEOUT_S) -> httpx.Response:
    """One request to a peer's own API, its answer whatever the status: 404 when the node is not a
    live peer, 502 when it does not answer."""
    if not candidate_urls(port, node_id):
        raise NotFound(f"Node {node_id} is not a live peer with an API", param="node_id")
    headers = {"content-type": "application/json"} if content is not None else None
    async with httpx.AsyncClient(timeout=timeout, trust_env=False, headers=forwarded_auth()) as client:
        try:
            with trio.fail_after(timeout):
                url = await resolve_peer(client, port, node_id)
                return await client.request(method, url + path, content=content, headers=headers)
        except NotFound as exc:
            raise PeerUnreachable(exc.message, param="node_id") from exc
        except (trio.TooSlowError, httpx.HTTPError) as exc:
            raise PeerUnreachable(f"Node {node_id} did not answer {method} {path}: "
                                  f"{str(exc) or type(exc).__name__}", param="node_id") from exc
