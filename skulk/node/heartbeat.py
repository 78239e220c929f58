"""Builds this node's heartbeat from fresh probe readings."""

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from skulk import probe
from skulk.types.ids import NodeId, SessionId
from skulk.types.node import NetworkInterfaceInfo
from skulk.types.wire import NodeHeartbeat


def reachable_interfaces(listen_host: str) -> list[NetworkInterfaceInfo]:
    ifaces = probe.read_interfaces()
    if listen_host.startswith("127."):  # a loopback-bound node is reachable only there
        ifaces = [i for i in ifaces if i.ip_address.startswith("127.")]
    return ifaces


def heartbeat_builder(node_id: NodeId, friendly_name: str, listen_host: str, disk_path: Path,
                      api_port: int | None, listen_addrs: Callable[[], list[str]],
                      session: Callable[[], SessionId | None]) -> Callable[[], NodeHeartbeat]:
    def build() -> NodeHeartbeat:
        return NodeHeartbeat(
            node_id=node_id, sent_at=datetime.now(timezone.utc),
            identity=probe.read_identity(friendly_name), memory=probe.read_memory(),
            system=probe.read_system(), disk=probe.read_disk(disk_path),
            interfaces=reachable_interfaces(listen_host), listen_addrs=listen_addrs(),
            api_port=api_port, session=session())
    return build
