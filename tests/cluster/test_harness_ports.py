import socket

from skulk.testing.cluster import LocalCluster


def test_a_node_whose_port_was_taken_gets_new_ports_and_comes_up(tmp_path):
    # free_port() can race another process for a port; the harness must not fail a test for it.
    cluster = LocalCluster(tmp_path)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            node = cluster.add_node("n0", extra_args=["--no-worker"], start=False)
            squatter.bind(("127.0.0.1", node.api_port))
            squatter.listen()
            taken = node.api_port
            node.start()
            cluster.wait_ready(node, timeout=60)
            assert node.api_port != taken and node.get("/node_id")
        finally:
            cluster.stop_all()
