"""Two real nodes with a configured admin key: keys hold on every node, a temporary key expires
everywhere, a revoked key stops on the other node within 5 s, user keys get 403 on admin routes,
the real clients pass their keys, and no key value shows in what the nodes serve or keep on disk."""

import time

import anthropic
import httpx
import ollama
import openai
import pytest

from skulk.testing.cluster import LocalCluster, wait_until

ADMIN_KEY = "test-admin-key-0123456789abcdef"


def call(node, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(trust_env=False, timeout=10) as c:
        return c.request(method, node.url + path, headers={**headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("access"),
                           extra_env={"SKULK_DEFAULT_MODEL__AUTO_PLACE": "false", "SKULK_AUTH__ADMIN_KEY": ADMIN_KEY})
    try:
        a = cluster.add_node("a", extra_args=["--no-worker"])
        cluster.wait_ready(a, timeout=60)
        b = cluster.add_node("b", extra_args=["--no-worker"])
        cluster.wait_ready(b, timeout=60)
        for n in (a, b):
            wait_until(lambda n=n: call(n, "GET", "/v1/keys").status_code == 401, 60,
                       message=f"{n.name} holds the configured admin key")  # an open node answers 200
            assert call(n, "GET", "/v1/keys", ADMIN_KEY).status_code == 200
        yield a, b
    finally:
        cluster.stop_all()


def new_key(node, **body) -> dict:
    resp = call(node, "POST", "/v1/keys", ADMIN_KEY, json={"name": "t", "role": "user", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def works(node, key: str) -> bool:
    return call(node, "GET", "/v1/models", key).status_code == 200


def test_keys_are_required_and_scoped(nodes):
    a, b = nodes
    assert call(b, "GET", "/state").status_code == 401
    assert call(b, "GET", "/state", "sk-skulk-nope.nope").status_code == 401
    assert call(a, "GET", "/health").status_code == 200 and call(a, "GET", "/ready").status_code == 200
    user = new_key(a)["key"]
    wait_until(lambda: works(b, user), 10, message="user key replicated to b")
    for method, path, body in [("POST", "/admin/restart", None), ("PUT", "/config", {}),
                               ("DELETE", "/instance/nope", None)]:
        assert call(b, method, path, user, json=body).status_code == 403, path
    assert call(a, "GET", "/health", headers={"Host": "evil.example"}).status_code == 421


def test_a_temporary_key_expires_on_every_node(nodes):
    a, b = nodes
    made = new_key(a, expires_in_seconds=3)
    created = time.monotonic()
    assert made["expires_at"] and works(a, made["key"])
    wait_until(lambda: works(b, made["key"]), 3, message="temporary key works on b")
    wait_until(lambda: not works(a, made["key"]) and not works(b, made["key"]), 10, message="expired everywhere")
    assert time.monotonic() - created > 2.0  # it held until (about) its expiry


def test_a_revoked_key_stops_on_the_other_node_within_5s(nodes):
    a, b = nodes
    made = new_key(a)
    wait_until(lambda: works(b, made["key"]), 10, message="key works on b")
    assert call(a, "DELETE", f"/v1/keys/{made['id']}", ADMIN_KEY).status_code == 200
    wait_until(lambda: call(b, "GET", "/v1/models", made["key"]).status_code == 401, 5, message="revoked on b")
    listed = call(b, "GET", "/v1/keys", ADMIN_KEY).json()["data"]
    assert made["id"] not in {k["id"] for k in listed}


def test_real_clients_pass_their_keys(nodes):
    a, _ = nodes
    user = new_key(a)["key"]
    wait_until(lambda: works(a, user), 5)
    assert openai.OpenAI(api_key=user, base_url=a.url + "/v1", max_retries=0).models.list() is not None
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=a.url + "/v1", max_retries=0).models.list()
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(api_key="wrong", base_url=a.url, max_retries=0).messages.create(
            model="m", max_tokens=4, messages=[{"role": "user", "content": "hi"}])
    assert ollama.Client(host=a.url + "/ollama", headers={"Authorization": f"Bearer {user}"}).list() is not None
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=a.url + "/ollama", headers={"Authorization": "Bearer wrong"}).list()
    assert err.value.status_code == 401


def test_no_key_value_is_served_logged_or_stored(nodes):
    a, b = nodes
    made = new_key(a)
    wait_until(lambda: works(b, made["key"]), 10)
    secrets = [ADMIN_KEY, made["key"], made["key"].split(".", 1)[1]]
    for node in (a, b):
        for path in ("/state", "/events", "/v1/diagnostics/node", "/v1/keys", "/config"):
            text = call(node, "GET", path, ADMIN_KEY).text
            assert not any(s in text for s in secrets), (node.name, path)
        assert "keyHash" not in call(node, "GET", "/state", ADMIN_KEY).text
        assert "keyHash" not in call(node, "GET", "/events", ADMIN_KEY).text
        for f in node.home.rglob("*"):
            if f.is_file() and f.stat().st_size < 64 * 1024 * 1024:
                data = f.read_bytes()
                assert not any(s.encode() in data for s in secrets), f
