"""Onboarding, node identity, remote access, Tailscale and the folder picker, in process with a fake port."""

import json
import os
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from skulk.api import routes_node
from skulk.api.app import create_app
from skulk.api.remote_access import first_ipv4, lan_ipv4, remote_access
from skulk.models import ModelCatalog
from skulk.probe import tailscale
from skulk.types.ids import Memory
from skulk.types.node import MemoryUsage, NetworkInterfaceInfo, NodeIdentity, NodeNetworkInfo, SystemPerformanceProfile
from skulk.types.state import State
from skulk.types.wire import NodeHeartbeat

HTML = {"Accept": "text/html"}
TAILSCALE_JSON = {"BackendState": "Running", "Version": "1.66.1",
                  "Self": {"HostName": "alpha", "DNSName": "alpha.tail-abc.ts.net.",
                           "TailscaleIPs": ["100.101.1.2", "fd7a:115c:a1e0::1"]},
                  "Peer": {"k1": {"TailscaleIPs": ["100.101.9.9"]}, "k2": {"TailscaleIPs": []}}}


def beat(node_id: str, ips: list[str], api_port: int = 52415, hostname: str = "alpha-host") -> NodeHeartbeat:
    gb = Memory.from_gb(1)
    return NodeHeartbeat(
        node_id=node_id, sent_at=datetime.now(UTC), identity=NodeIdentity(friendly_name=node_id, hostname=hostname),
        memory=MemoryUsage(ram_total=gb, ram_available=gb, swap_total=gb, swap_available=gb),
        system=SystemPerformanceProfile(), api_port=api_port,
        interfaces=[NetworkInterfaceInfo(name=f"if{i}", ip_address=ip) for i, ip in enumerate(ips)])


class NodePort:
    node_id = "a"
    friendly_name = "alpha"
    session = None
    is_master = True
    history = []
    catalog = ModelCatalog()

    def __init__(self, flag: Path | None = None, ips=("127.0.0.1", "169.254.3.3", "192.168.1.20"), beats=None):
        self.onboarding_flag = flag
        self.state = State(node_network={"a": NodeNetworkInfo(interfaces=[
            NetworkInterfaceInfo(name=f"en{i}", ip_address=ip) for i, ip in enumerate(ips)])})
        self.beats = beats or {}

    def live_telemetry(self):
        return self.beats, {n: 0.0 for n in self.beats}

    def node_memory(self):
        return {}

    def node_names(self):
        return {}


def client(port) -> TestClient:
    return TestClient(create_app(port), backend="trio", raise_server_exceptions=False)


@pytest.fixture
def no_tailscale(monkeypatch):
    monkeypatch.setattr(tailscale, "tailscale_binary", lambda: None)


@pytest.fixture
def fake_tailscale(tmp_path, monkeypatch):
    """A `tailscale` on PATH that prints a status document."""
    script = tmp_path / "bin" / "tailscale"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(TAILSCALE_JSON)}\nEOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


# --- onboarding ---

def test_onboarding_flag_persists_across_app_instances(tmp_path):
    flag = tmp_path / "home" / "onboarding_complete"
    c = client(NodePort(flag))
    assert c.get("/onboarding").json() == {"completed": False}
    assert c.post("/onboarding", json={"completed": True}).json() == {"completed": True}
    assert flag.is_file()
    again = client(NodePort(flag))  # a restarted node reads the same file
    assert again.get("/onboarding").json() == {"completed": True}
    assert again.post("/onboarding", json={"completed": False}).json() == {"completed": False}
    assert not flag.exists() and client(NodePort(flag)).get("/onboarding").json() == {"completed": False}
    assert again.post("/onboarding").json() == {"completed": True}  # no body: completed
    assert flag.is_file()


def test_onboarding_rejects_bad_bodies_and_missing_flag(tmp_path):
    c = client(NodePort(tmp_path / "onboarding_complete"))
    resp = c.post("/onboarding", json={"completed": [1]})
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "completed"
    assert c.post("/onboarding", content=b"{nope").status_code == 422  # as read_json_model answers
    bare = client(NodePort(None))
    assert bare.get("/onboarding").json() == {"completed": False}
    assert bare.post("/onboarding", json={}).status_code == 503


def test_facade_keeps_the_flag_in_the_node_home(tmp_path):
    from types import SimpleNamespace

    from skulk.node.facade import ClusterFacade
    facade = ClusterFacade.__new__(ClusterFacade)
    facade._ops = SimpleNamespace(paths=SimpleNamespace(home=tmp_path))
    assert facade.onboarding_flag == tmp_path / "onboarding_complete"
    facade._ops = None
    assert facade.onboarding_flag is None


# --- identity and remote access ---

def test_node_identity_skips_loopback_and_link_local():
    body = client(NodePort(beats={"a": beat("a", ["10.0.0.7"])})).get("/node/identity").json()
    assert body == {"nodeId": "a", "hostname": "alpha-host", "ipAddress": "192.168.1.20"}
    body = client(NodePort(ips=("127.0.0.1", "::1", "fe80::1"))).get("/node/identity").json()
    assert body["ipAddress"] is None and body["hostname"]  # no heartbeat: this machine's hostname
    # Only the heartbeat knows the interfaces (a node without a worker):
    port = NodePort(ips=(), beats={"a": beat("a", ["169.254.0.9", "10.1.2.3"])})
    assert client(port).get("/node/identity").json()["ipAddress"] == "10.1.2.3"


def test_address_choice():
    assert first_ipv4(["127.0.0.1", "fe80::1", "169.254.1.1", "100.100.1.1", "10.0.0.1"]) == "100.100.1.1"
    assert lan_ipv4(["100.100.1.1", "8.8.4.4", "10.0.0.1"]) == "10.0.0.1"
    assert lan_ipv4(["100.100.1.1", "8.8.4.4"]) == "8.8.4.4"
    assert lan_ipv4(["127.0.0.1", "not an ip"]) is None


def test_remote_access_without_tailscale_uses_the_lan_address(no_tailscale):
    port = NodePort(beats={"a": beat("a", [], api_port=8123)})
    body = client(port).get("/v1/connectivity/remote-access").json()
    assert body["preferredUrl"] == "http://192.168.1.20:8123" == body["lanUrl"] == body["local"]["url"]
    assert body["operatorUrl"] == "http://192.168.1.20:8123/operator"
    assert body["tailscale"] == {"running": False, "installed": False, "ip": None, "dnsName": None, "port": 8123,
                                 "url": None}
    body = client(NodePort(ips=())).get("/v1/connectivity/remote-access").json()
    assert body["preferredUrl"] is None and body["operatorUrl"] is None and body["local"]["port"] == 52415


def test_remote_access_prefers_the_tailscale_name(fake_tailscale):
    body = client(NodePort(beats={"a": beat("a", [])})).get("/v1/connectivity/remote-access").json()
    assert body["preferredUrl"] == "http://alpha.tail-abc.ts.net:52415"
    assert body["operatorUrl"] == "http://alpha.tail-abc.ts.net:52415/operator"
    assert body["lanUrl"] == "http://192.168.1.20:52415" and body["tailscale"]["ip"] == "100.101.1.2"
    no_dns = remote_access(["10.0.0.2"], 1, {"running": True, "selfIp": "100.64.0.5", "dnsName": None})
    assert no_dns["preferredUrl"] == "http://100.64.0.5:1"


# --- tailscale ---

def test_tailscale_status_from_the_cli(fake_tailscale):
    body = client(NodePort()).get("/v1/connectivity/tailscale").json()
    assert body["running"] is True and body["selfIp"] == "100.101.1.2" and body["nodeId"] == "a"
    assert body["dnsName"] == "alpha.tail-abc.ts.net" and body["tailnet"] == "tail-abc.ts.net"
    assert body["hostname"] == "alpha" and body["version"] == "1.66.1" and body["peerIps"] == ["100.101.9.9"]
    # Its own id is not a proxy hop.
    assert client(NodePort()).get("/v1/connectivity/tailscale?node_id=a").json()["selfIp"] == "100.101.1.2"


def test_tailscale_missing_broken_or_stopped(no_tailscale, tmp_path, monkeypatch):
    body = client(NodePort()).get("/v1/connectivity/tailscale").json()
    assert body["running"] is False and body["installed"] is False and body["selfIp"] is None
    assert tailscale.parse_status({"BackendState": "Stopped", "Self": "odd"})["running"] is False
    assert tailscale.parse_status(["not", "a", "dict"]) == tailscale.not_running(installed=True)
    broken = tmp_path / "tailscale"
    broken.write_text("#!/bin/sh\necho 'not json'\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(tailscale, "tailscale_binary", lambda: str(broken))
    assert tailscale.read_status() == tailscale.not_running(installed=True)
    broken.write_text("#!/bin/sh\nexec sleep 5\n")
    assert tailscale.read_status(timeout=0.2)["running"] is False


def _peer_transport(answers: dict[str, httpx.Response]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.get(str(request.url))
        if answer is None:
            raise httpx.ConnectError("unreachable", request=request)
        return answer
    return httpx.MockTransport(handler)


def test_tailscale_of_another_node_is_proxied(monkeypatch):
    answers = {"http://10.0.0.9:52415/node_id": httpx.Response(200, json="b"),
               "http://10.0.0.9:52415/v1/connectivity/tailscale": httpx.Response(200, json={"running": True,
                                                                                           "selfIp": "100.64.9.9"})}
    monkeypatch.setattr(routes_node, "peer_client", lambda: httpx.AsyncClient(transport=_peer_transport(answers)))
    port = NodePort(beats={"b": beat("b", ["127.0.0.1", "10.0.0.9"])})
    c = client(port)
    assert c.get("/v1/connectivity/tailscale?node_id=b").json() == {"running": True, "selfIp": "100.64.9.9"}
    resp = c.get("/v1/connectivity/tailscale?node_id=ghost")
    assert resp.status_code == 404 and resp.json()["error"]["param"] == "node_id"
    answers["http://10.0.0.9:52415/v1/connectivity/tailscale"] = httpx.Response(500, json={"error": "boom"})
    assert c.get("/v1/connectivity/tailscale?node_id=b").status_code == 502
    del answers["http://10.0.0.9:52415/v1/connectivity/tailscale"]
    assert c.get("/v1/connectivity/tailscale?node_id=b").status_code == 502
    del answers["http://10.0.0.9:52415/node_id"]  # nothing answers as b
    assert c.get("/v1/connectivity/tailscale?node_id=b").status_code == 404


# --- folder picker ---

@pytest.fixture
def tmp_tree():
    root = Path(tempfile.mkdtemp(prefix="skulk-browse-", dir="/tmp"))
    for name in ("beta", "Alpha", ".hidden", "gamma/inner"):
        (root / name).mkdir(parents=True)
    (root / "file.txt").write_text("x")
    (root / "to_etc").symlink_to("/etc")
    (root / "to_beta").symlink_to(root / "beta")
    yield root
    shutil.rmtree(root)


def test_browse_lists_visible_subfolders_sorted(tmp_tree):
    body = client(NodePort()).get("/filesystem/browse", params={"path": str(tmp_tree)}).json()
    real = tmp_tree.resolve()
    assert body["path"] == str(real) and body["truncated"] is False
    assert body["directories"] == [{"name": n, "path": str(real / n)} for n in ("Alpha", "beta", "gamma", "to_beta")]


def test_browse_refuses_bad_outside_and_missing_paths(tmp_tree):
    c = client(NodePort())

    def status(path=None):
        resp = c.get("/filesystem/browse", params={} if path is None else {"path": path})
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
        return resp.status_code

    assert status() == 400 and status("") == 400 and status("tmp/x") == 400 and status("/tmp/a\x00b") == 400
    assert status("/etc") == 403 and status("/") == 403
    assert status(f"{tmp_tree}/../../etc") == 403  # `..` resolved before the check
    assert status(f"{tmp_tree}/to_etc") == 403  # so are symlinks
    assert status(f"{tmp_tree}/missing") == 404 and status(f"{tmp_tree}/file.txt") == 404
    inside = c.get("/filesystem/browse", params={"path": f"{tmp_tree}/beta/../gamma"}).json()  # `..` inside: fine
    assert [d["name"] for d in inside["directories"]] == ["inner"]


# --- dashboard deep links and the OpenAPI document ---

def test_dashboard_deep_links_serve_the_app():
    c = client(NodePort())
    for path in ("/cluster", "/model-store", "/chat", "/operator", "/cluster/", "/model-store/", "/chat/",
                 "/operator/"):
        resp = c.get(path, headers=HTML)
        assert resp.status_code == 200 and 'src="assets/js/main.js"' in resp.text, path


def test_new_routes_are_in_the_openapi_document():
    paths = client(NodePort()).get("/api/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/onboarding"])
    for path in ("/node/identity", "/v1/connectivity/remote-access", "/v1/connectivity/tailscale",
                 "/filesystem/browse"):
        assert "get" in paths[path], path
    assert "403" in paths["/filesystem/browse"]["get"]["responses"]
