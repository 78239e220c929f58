"""/v1/embeddings in-process, against a scripted cluster port: response shape, base64 packing,
validation, and the command life cycle (EmbedText, then FinishCommand)."""

import base64
import struct

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.models import DEFAULT_MODEL_ID
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk

from .fake_port import EMBED_MODEL, NODE, ScriptedPort


def client(port: ScriptedPort) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def test_response_shape_and_command_life_cycle():
    port = ScriptedPort()
    resp = client(port).post("/v1/embeddings", json={"model": EMBED_MODEL, "input": ["a", "b"], "user": "u"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list" and body["model"] == EMBED_MODEL
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8, 0.0]},
                            {"object": "embedding", "index": 1, "embedding": [0.6, 0.8, 1.0]}]
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    (sent,) = port.sent_of(cmd.EmbedText)
    assert sent.task_params.input == ["a", "b"] and sent.owner_node == NODE
    (finish,) = port.sent_of(cmd.FinishCommand)
    assert finish.finished_command_id == sent.command_id


def test_a_single_string_and_base64_packing():
    port = ScriptedPort()
    floats = client(port).post("/v1/embeddings", json={"model": EMBED_MODEL, "input": "a"}).json()
    packed = client(port).post("/v1/embeddings", json={"model": EMBED_MODEL, "input": "a",
                                                      "encoding_format": "base64"}).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(floats["data"]) == 1
    assert [round(x, 6) for x in decoded] == [round(x, 6) for x in floats["data"][0]["embedding"]]


def test_validation_errors_use_the_envelope():
    c = client(ScriptedPort(running=(DEFAULT_MODEL_ID,)))
    cases = [
        ({"model": EMBED_MODEL, "input": []}, 400),
        ({"model": EMBED_MODEL, "input": ""}, 400),
        ({"model": EMBED_MODEL, "input": ["ok", ""]}, 400),
        ({"model": EMBED_MODEL, "input": ["x"] * 2049}, 400),
        ({"model": EMBED_MODEL, "input": "a", "dimensions": 128}, 400),
        ({"model": DEFAULT_MODEL_ID, "input": "a"}, 400),  # not an embedding model
        ({"model": EMBED_MODEL, "input": "a"}, 404),  # an embedding model, but no instance of it
        ({"model": "nobody/nothing", "input": "a"}, 404),
        ({"model": EMBED_MODEL, "input": "a", "encoding_format": "hex"}, 422),
    ]
    for body, status in cases:
        resp = c.post("/v1/embeddings", json=body)
        assert resp.status_code == status, (body, resp.text)
        assert set(resp.json()["error"]) >= {"message", "type", "param", "code"}
    assert "not an embedding model" in c.post("/v1/embeddings", json={"model": DEFAULT_MODEL_ID, "input": "a"}).text


def test_a_runner_error_becomes_the_response():
    def broken(command):
        return [ErrorChunk(error_type="embedding_failed", error_message="boom", status_code=500)]

    resp = client(ScriptedPort(embed=broken)).post("/v1/embeddings", json={"model": EMBED_MODEL, "input": "a"})
    assert resp.status_code == 500 and resp.json()["error"]["message"] == "boom"
    assert resp.json()["error"]["code"] == "embedding_failed"
