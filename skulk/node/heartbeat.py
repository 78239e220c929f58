"""Builds this node's heartbeat from fresh probe readings."""

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from skulk import probe
from skulk.probe.devices import MockSpec
from skulk.types.ids import NodeId, SessionId
from skulk.types.node import MAX_INTERFACES, NetworkInterfaceInfo
from skulk.types.wire import MAX_HEARTBEAT_INTERFACES, MAX_LISTEN_ADDRS, NodeHeartbeat

_MAX_NAME = 256  # NodeIdentity's text bound: a longer --node-name is cut, never fatal


def reachable_interfaces(listen_host: str) -> list[NetworkInterfaceInfo]:
    ifaces = probe.read_interfaces()
    if listen_host.startswith("127."):  # a loopback-bound node is reachable only there
        ifaces = [i for i in ifaces if i.ip_address.startswith("127.")]
    return ifaces[:MAX_INTERFACES]


def heartbeat_builder(node_id: NodeId, friendly_name: str, listen_host: str, disk_path: Path,
                      api_port: int | None, listen_addrs: Callable[[], list[str]],
                      session: Callable[[], SessionId | None], has_worker: bool = True,
                      mock_devices: Sequence[MockSpec] = ()) -> Callable[[], NodeHeartbeat]:
    def build() -> NodeHeartbeat:
        # Trimmed to the wire bounds peers enforce, so a many-homed machine still gossips.
        return NodeHeartbeat(
            node_id=node_id, sent_at=datetime.now(timezone.utc),
            identity=probe.read_identity(friendly_name[:_MAX_NAME]), memory=probe.read_memory(),
            system=probe.read_system(mock_devices).model_copy(update={"has_worker": has_worker}), disk=probe.read_disk(disk_path),
            interfaces=reachable_interfaces(listen_host)[:MAX_HEARTBEAT_INTERFACES],
            listen_addrs=listen_addrs()[:MAX_LISTEN_ADDRS], api_port=api_port, session=session())
    return build
