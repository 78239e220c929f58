"""The model store's HTTP server asks for the token derived from the cluster secret: a real
server on 127.0.0.1, asked without, with a wrong and with the right token (HttpBackend)."""

import httpx
import pytest
import trio

from skulk.errors import SkulkError
from skulk.store.client import HttpBackend
from skulk.store.host import StoreHost
from skulk.store.server import make_store_app, serve_store, store_token
from skulk.testing.cluster import free_port


def test_the_token_comes_from_the_secret_only():
    assert store_token(None) is None and store_token("") is None
    assert store_token("s1") == store_token("s1") != store_token("s2")
    assert "s1" not in store_token("s1")


def test_the_store_refuses_requests_without_the_token(tmp_path):
    token = store_token("cluster-secret-for-this-test")
    host = StoreHost(tmp_path / "store", allow_hf_fallback=False, offline=True)

    async def main():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_store, make_store_app(host, token), "127.0.0.1", port)
            async with httpx.AsyncClient(base_url=url, trust_env=False) as c:
                bare = await c.get("/registry")
                wrong = await c.get("/registry", headers={"Authorization": "Bearer nope"})
                file = await c.get("/files/org--x/config.json")
            good = await HttpBackend(url, token).registry()
            with pytest.raises(SkulkError):
                await HttpBackend(url).registry()
            nursery.cancel_scope.cancel()
        return bare, wrong, file, good

    bare, wrong, file, good = trio.run(main)
    assert bare.status_code == 401 and wrong.status_code == 401 and file.status_code == 401
    assert isinstance(good, dict)
