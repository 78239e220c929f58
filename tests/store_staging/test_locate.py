"""Finding the store host, its bind address and its URL (pure helpers)."""

from skulk.store.locate import best_address, bind_host, is_store_host, store_address, store_url


def test_store_host_matches_node_id_name_and_hostname_forms():
    assert is_store_host("12D3KooWabc", node_id="12D3KooWabc", node_name="x", hostname=None)
    assert is_store_host("Mac-Studio.local", node_id="n", node_name="mac-studio", hostname=None)
    assert is_store_host("mac-studio", node_id="n", node_name="studio", hostname="Mac-Studio.lan")
    assert not is_store_host("mac-studio", node_id="n", node_name="laptop", hostname=None)


def test_nodes_with_their_own_name_do_not_match_the_shared_machine_hostname():
    # Test clusters run many named nodes on one machine; only the named one is the store host.
    assert not is_store_host("s0", node_id="n", node_name="n1", hostname=None)
    assert is_store_host("s0", node_id="n", node_name="s0", hostname=None)


def test_bind_host_follows_where_peers_reach_the_store():
    assert bind_host("127.0.0.1", "127.0.0.1") == "127.0.0.1"
    assert bind_host("127.0.0.1", None) == "0.0.0.0"
    assert bind_host("10.0.0.5", "10.0.0.5") == "10.0.0.5"


def test_store_address_prefers_the_configured_http_host_then_the_store_nodes_best_ip():
    peers = {"idA": ("s0", ["127.0.0.1", "169.254.1.1", "100.100.1.1", "192.168.1.7"])}
    assert store_address("s0", "10.9.9.9", peers) == "10.9.9.9"
    assert store_address("s0", None, peers) == "192.168.1.7"
    assert store_address("idA", None, peers) == "192.168.1.7"
    assert store_address("elsewhere.local", None, peers) == "elsewhere.local"
    assert best_address(["127.0.0.1"]) == "127.0.0.1" and best_address(["fe80::1"]) is None
    assert store_url("::1", 58080) == "http://[::1]:58080"
