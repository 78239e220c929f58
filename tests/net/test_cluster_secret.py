"""The cluster secret: the private-network key it makes, and real nodes that do or do not meet."""

import hashlib
import time

import pytest

from skulk.net import NetConfig, cluster_psk
from skulk.net.mdns import _fingerprint
from skulk.testing.cluster import LocalCluster, http, wait_until

SECRET_A = "secret-a-7Yq2kLz9"
SECRET_B = "secret-b-Wm4xR8tP"


# ---- the key (pure) ------------------------------------------------------------------------


def test_without_a_secret_the_key_is_the_namespace_derivation_of_before():
    # Pinned: nodes of the previous release (no secret) must still connect to these.
    expected = hashlib.sha3_256(b"skulk_discovery_network" + b"skulk-default").hexdigest()
    assert cluster_psk("skulk-default") == cluster_psk("skulk-default", None) == expected
    assert NetConfig().psk == expected


def test_the_key_depends_on_both_secret_and_namespace():
    keys = {cluster_psk(ns, secret) for ns in ("lab", "home") for secret in (None, SECRET_A, SECRET_B)}
    assert len(keys) == 6
    key = cluster_psk("lab", SECRET_A)
    assert len(key) == 64 and int(key, 16) >= 0 and cluster_psk("lab", SECRET_A) == key
    # Stretched, not a plain hash of public parts plus the secret.
    assert key != hashlib.sha3_256(b"skulk_discovery_network" + b"lab" + SECRET_A.encode()).hexdigest()
    assert NetConfig(namespace="lab", secret=SECRET_A).psk == key


def test_the_secret_never_shows_in_the_net_config_repr():
    assert SECRET_A not in repr(NetConfig(secret=SECRET_A))


def test_mdns_service_reveals_neither_namespace_nor_secret():
    secured = _fingerprint(cluster_psk("skulk-default", SECRET_A))
    assert len(secured) == 8 and "skulk" not in secured
    # No longer the old namespace-only hash, which anyone can compute for common namespaces.
    assert secured != hashlib.sha3_256(b"skulk_mdns" + b"skulk-default").hexdigest()[:8]
    assert secured != _fingerprint(cluster_psk("skulk-default"))
    assert secured != _fingerprint(cluster_psk("skulk-default", SECRET_B))


# ---- real nodes ----------------------------------------------------------------------------


def peers_of(node) -> set[str]:
    return set(node.get("/v1/diagnostics/node")["connectedPeers"])


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """a and d share SECRET_A (by flag and by file), b has SECRET_B (by env), c has none."""
    root = tmp_path_factory.mktemp("secret-cluster")
    (root / "a.secret").write_text(SECRET_A + "\n")
    cluster = LocalCluster(root)
    try:
        a = cluster.add_node("a", extra_args=["--no-worker", "--cluster-secret", SECRET_A])
        b = cluster.add_node("b", extra_args=["--no-worker"])
        b.env["SKULK_CLUSTER__SECRET"] = SECRET_B
        b.kill(), b.start()  # restart with the env variable set
        c = cluster.add_node("c", extra_args=["--no-worker"])
        d = cluster.add_node("d", extra_args=["--no-worker", "--cluster-secret-file", str(root / "a.secret")])
        for node in (a, b, c, d):
            cluster.wait_ready(node)
        ids = {node.name: node.get("/node_id") for node in (a, b, c, d)}
        yield {"a": a, "b": b, "c": c, "d": d}, ids
    finally:
        cluster.stop_all()


def test_same_secret_connects_and_other_secrets_never_do(nodes):
    procs, ids = nodes
    a, b, c, d = (procs[k] for k in "abcd")
    wait_until(lambda: ids["d"] in peers_of(a) and ids["a"] in peers_of(d), 20, message="a and d connect")
    wait_until(lambda: set(a.get("/state")["nodeIdentities"]) == {ids["a"], ids["d"]}, 15,
               message="a and d form one cluster")
    # Every node dials every other (bootstrap peers): give that several rounds to go wrong.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert peers_of(a) <= {ids["d"]} and peers_of(d) <= {ids["a"]}
        assert peers_of(b) == set() and peers_of(c) == set()
        assert set(b.get("/state")["nodeIdentities"]) == {ids["b"]}
        assert set(c.get("/state")["nodeIdentities"]) == {ids["c"]}
        time.sleep(0.5)
    assert all(node.alive() for node in procs.values())


def test_nodes_report_whether_their_cluster_is_secured(nodes):
    procs, _ = nodes
    secured = {name: node.get("/v1/diagnostics/node")["runtime"]["clusterSecured"] for name, node in procs.items()}
    assert secured == {"a": True, "b": True, "c": False, "d": True}
    warned = [name for name, node in procs.items() if "this cluster has no secret" in node.log_tail(400)]
    assert warned == ["c"]


def test_the_secret_is_never_shown(nodes):
    procs, _ = nodes
    for name, node in procs.items():
        for path in ("/state", "/config", "/v1/diagnostics/node"):
            text = http().get(node.url + path, timeout=5).text
            assert SECRET_A not in text and SECRET_B not in text, (name, path)
        assert SECRET_A not in node.log_tail(400) and SECRET_B not in node.log_tail(400)
    argv = procs["a"].get("/v1/diagnostics/node")["runtime"]["argv"]
    assert argv[argv.index("--cluster-secret") + 1] == "<redacted>"
