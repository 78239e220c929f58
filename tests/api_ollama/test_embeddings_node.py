"""/v1/embeddings end to end on a real node: API -> master -> worker -> runner -> data plane,
checked against a numpy forward pass over the same weights."""

import base64
import struct

import httpx
import numpy as np

from skulk.models import DEFAULT_MODEL_ID
from tests.engine.bert_reference import numpy_reference

from .fake_port import EMBED_MODEL

TEXTS = ["cat", "kitten", "stock market", "A man is playing a guitar on the stage tonight."]


def embeddings(node, **body) -> httpx.Response:
    return httpx.post(node.url + "/v1/embeddings", json={"model": EMBED_MODEL, **body}, timeout=60, trust_env=False)


def test_vectors_match_the_reference_and_order_by_meaning(serving_node):
    resp = embeddings(serving_node, input=TEXTS)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS))) and body["model"] == EMBED_MODEL
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS) * 2
    vectors = [np.array(d["embedding"]) for d in body["data"]]
    for text, vec in zip(TEXTS, vectors):
        assert vec.shape == (384,) and float(vec @ numpy_reference(text)) > 0.999, text
    cat, kitten, market, _ = vectors
    assert cat @ kitten > cat @ market


def test_base64_is_packed_little_endian_float32(serving_node):
    floats = embeddings(serving_node, input="kitten").json()["data"][0]["embedding"]
    packed = embeddings(serving_node, input="kitten", encoding_format="base64").json()["data"][0]["embedding"]
    raw = base64.b64decode(packed)
    assert len(raw) == 384 * 4
    assert np.allclose(struct.unpack("<384f", raw), floats, atol=1e-6)


def test_refusals(serving_node):
    assert embeddings(serving_node, input=[]).status_code == 400
    assert embeddings(serving_node, input="x", dimensions=64).status_code == 400
    wrong = embeddings(serving_node, input="x", model=DEFAULT_MODEL_ID)
    assert wrong.status_code == 400 and "not an embedding model" in wrong.json()["error"]["message"]
    assert embeddings(serving_node, input="x", model="nobody/nothing").status_code == 404
