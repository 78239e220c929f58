"""The Ollama API on a real node, driven by the official `ollama` Python client and by httpx."""

import json

import httpx
import pytest

from skulk.models import DEFAULT_MODEL_ID

from .fake_port import EMBED_MODEL

ollama = pytest.importorskip("ollama")
QUESTION = "What is the capital of France?"
GREEDY = {"temperature": 0, "num_predict": 12}


def client(node) -> "ollama.Client":
    return ollama.Client(host=node.url + "/ollama", timeout=120)  # the client appends /api/<name>


def test_chat_streamed_and_whole_agree(serving_node):
    c = client(serving_node)
    messages = [{"role": "user", "content": QUESTION}]
    whole = c.chat(model=DEFAULT_MODEL_ID, messages=messages, options=GREEDY, stream=False)
    assert whole.done and whole.message.role == "assistant" and whole.message.content
    assert whole.done_reason in ("stop", "length") and whole.eval_count > 0 and whole.prompt_eval_count > 5
    parts = list(c.chat(model=DEFAULT_MODEL_ID, messages=messages, options=GREEDY, stream=True))
    assert len(parts) > 2 and all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count and parts[-1].total_duration > 0


def test_generate_streamed_and_whole_agree(serving_node):
    c = client(serving_node)
    whole = c.generate(model=DEFAULT_MODEL_ID, prompt=QUESTION, options=GREEDY)
    assert whole.done and whole.response
    parts = list(c.generate(model=DEFAULT_MODEL_ID, prompt=QUESTION, options=GREEDY, stream=True))
    assert "".join(p.response for p in parts) == whole.response and parts[-1].done


def test_model_listings_and_embed(serving_node):
    c = client(serving_node)
    assert {m.model for m in c.list().models} == {DEFAULT_MODEL_ID, EMBED_MODEL}
    assert {m.model for m in c.ps().models} == {DEFAULT_MODEL_ID, EMBED_MODEL}
    shown = c.show(DEFAULT_MODEL_ID)
    assert shown.modelfile.startswith("FROM ") and shown.details.family == "llama"
    vectors = c.embed(model=EMBED_MODEL, input=["cat", "kitten"]).embeddings
    assert len(vectors) == 2 and len(vectors[0]) == 384
    with pytest.raises(ollama.ResponseError) as err:
        c.chat(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as err:
        c.show("nobody/nothing")
    assert err.value.status_code == 404


def test_ndjson_on_the_wire(serving_node):
    body = json.dumps({"model": DEFAULT_MODEL_ID, "prompt": QUESTION, "options": GREEDY})  # stream defaults on
    with httpx.stream("POST", serving_node.url + "/ollama/api/generate", content=body, timeout=120,
                      headers={"Content-Type": "application/octet-stream"}, trust_env=False) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
        raw = b"".join(resp.iter_bytes())
    lines = raw.decode().split("\n")
    assert lines[-1] == "" and len(lines) > 3
    parts = [json.loads(line) for line in lines[:-1]]
    assert all(set(p) >= {"model", "created_at", "response", "done"} for p in parts)
    final = parts[-1]
    assert final["done"] is True and final["done_reason"] in ("stop", "length")
    for key in ("total_duration", "eval_count", "prompt_eval_count", "eval_duration"):
        assert final[key] > 0, key
    url = serving_node.url + "/ollama/api"
    assert httpx.head(url + "/version", trust_env=False).status_code == 200
    assert httpx.head(serving_node.url + "/ollama/", trust_env=False).status_code == 200
    missing = httpx.post(url + "/show", json={}, trust_env=False)
    assert missing.status_code == 400 and isinstance(missing.json()["error"], str)
    not_chat = httpx.post(url + "/chat", json={"model": EMBED_MODEL, "messages": [{"role": "user", "content": "x"}]},
                          trust_env=False)
    assert not_chat.status_code == 400
