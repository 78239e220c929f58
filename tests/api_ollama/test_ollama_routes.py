"""The Ollama routes in-process, against a scripted cluster port: NDJSON shape, translation of
requests into task params, model listings, and Ollama-shaped errors."""

import json

from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.models import DEFAULT_MODEL_ID
from skulk.types import commands as cmd
from skulk.types.chunks import ErrorChunk

from .fake_port import EMBED_MODEL, ScriptedPort


def client(port: ScriptedPort) -> TestClient:
    return TestClient(create_app(port), raise_server_exceptions=False, backend="trio")


def lines(resp) -> list[dict]:
    assert resp.text.endswith("\n")
    return [json.loads(line) for line in resp.text.splitlines()]


def test_liveness_and_version_answer_get_and_head():
    c = client(ScriptedPort())
    assert c.get("/ollama/").text == "Ollama is running"
    assert c.head("/ollama/").status_code == 200
    assert c.head("/ollama/api/version").status_code == 200
    assert c.get("/ollama/api/version").json()["version"].count(".") == 2


def test_chat_streams_ndjson_by_default_whatever_the_content_type():
    port = ScriptedPort()
    body = json.dumps({"model": DEFAULT_MODEL_ID, "messages": [{"role": "user", "content": "hi"}]})
    resp = client(port).post("/ollama/api/chat", content=body, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    parts = lines(resp)
    assert [p["message"]["content"] for p in parts] == ["Hel", "lo", ""]
    assert all(p["model"] == DEFAULT_MODEL_ID and p["created_at"].endswith("Z") for p in parts)
    assert [p["done"] for p in parts] == [False, False, True]
    final = parts[-1]
    assert final["done_reason"] == "stop" and final["eval_count"] == 2 and final["prompt_eval_count"] == 7
    assert final["total_duration"] > 0 and "load_duration" in final
    assert len(port.sent_of(cmd.FinishCommand)) == 1 and not port.sent_of(cmd.CancelCommand)


def test_chat_without_streaming_and_option_translation():
    port = ScriptedPort()
    options = {"temperature": 0, "top_k": 5, "num_predict": 12, "stop": ["\n"], "seed": 3, "repeat_penalty": 1.1,
               "repeat_last_n": -1}
    resp = client(port).post("/ollama/api/chat", json={
        "model": DEFAULT_MODEL_ID, "stream": False, "options": options, "think": False,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]})
    body = resp.json()
    assert resp.status_code == 200 and body["message"] == {"role": "assistant", "content": "Hello"}
    assert body["done"] is True and body["eval_count"] == 2
    params = port.sent_of(cmd.GenerateText)[0].task_params
    assert [m.role for m in params.input] == ["system", "user"]
    assert (params.temperature, params.top_k, params.max_output_tokens, params.stop, params.seed) == (0, 5, 12, ["\n"], 3)
    assert params.repetition_penalty == 1.1 and params.repetition_context_size is None
    assert params.enable_thinking is False and params.stream is False


def test_generate_streams_response_pieces_with_the_system_prompt_first():
    port = ScriptedPort()
    resp = client(port).post("/ollama/api/generate", json={"model": DEFAULT_MODEL_ID, "prompt": "hi", "system": "s"})
    parts = lines(resp)
    assert "".join(p["response"] for p in parts) == "Hello" and parts[-1]["done"] is True
    params = port.sent_of(cmd.GenerateText)[0].task_params
    assert [(m.role, m.content) for m in params.input] == [("system", "s"), ("user", "hi")]
    resp = client(port).post("/ollama/api/generate", json={"model": DEFAULT_MODEL_ID, "prompt": "hi", "stream": False})
    assert resp.json()["response"] == "Hello"


def test_empty_requests_report_the_model_loaded():
    c = client(ScriptedPort())
    chat = c.post("/ollama/api/chat", json={"model": DEFAULT_MODEL_ID, "messages": []}).json()
    assert chat["done"] is True and chat["done_reason"] == "load"
    gen = c.post("/ollama/api/generate", json={"model": DEFAULT_MODEL_ID}).json()
    assert gen["done_reason"] == "load" and gen["response"] == ""


def test_errors_are_ollama_shaped():
    def broken(command):
        return [ErrorChunk(error_type="runner_failed", error_message="runner died", status_code=500)]

    c = client(ScriptedPort(generate=broken))
    chat = {"model": DEFAULT_MODEL_ID, "messages": [{"role": "user", "content": "hi"}]}
    streamed = lines(c.post("/ollama/api/chat", json=chat))
    assert streamed == [{"error": "runner died"}]
    resp = c.post("/ollama/api/chat", json={**chat, "stream": False})
    assert resp.status_code == 500 and resp.json() == {"error": "runner died"}
    resp = c.post("/ollama/api/chat", json={**chat, "model": "nobody/nothing"})
    assert resp.status_code == 404 and isinstance(resp.json()["error"], str)
    resp = c.post("/ollama/api/chat", json={**chat, "model": EMBED_MODEL})
    assert resp.status_code == 400 and "embedding" in resp.json()["error"]
    assert c.post("/ollama/api/chat", content=b"{oops").status_code == 400
    assert c.post("/ollama/api/chat", json={"messages": []}).status_code == 400  # no model
    bad_role = {**chat, "messages": [{"role": "robot", "content": "x"}]}
    assert c.post("/ollama/api/chat", json=bad_role).status_code == 400


def test_aliases_reach_the_same_handlers():
    c = client(ScriptedPort())
    for prefix in ("/ollama/api/api", "/ollama/api/v1"):
        assert c.get(f"{prefix}/tags").json()["models"]
        resp = c.post(f"{prefix}/chat", json={"model": DEFAULT_MODEL_ID, "stream": False,
                                              "messages": [{"role": "user", "content": "hi"}]})
        assert resp.json()["message"]["content"] == "Hello"


def test_tags_list_running_and_downloaded_models():
    port = ScriptedPort(running=(DEFAULT_MODEL_ID,), downloaded=(EMBED_MODEL,))
    models = {m["name"]: m for m in client(port).get("/ollama/api/tags").json()["models"]}
    assert set(models) == {DEFAULT_MODEL_ID, EMBED_MODEL}
    chat = models[DEFAULT_MODEL_ID]
    assert chat["model"] == DEFAULT_MODEL_ID and chat["size"] > 0 and len(chat["digest"]) == 64
    assert chat["details"]["family"] == "llama" and chat["details"]["quantization_level"] == "4bit"
    assert chat["modified_at"].endswith("Z")
    assert [m["name"] for m in client(port).get("/ollama/api/ps").json()["models"]] == [DEFAULT_MODEL_ID]


def test_show_describes_a_model_and_refuses_bad_names():
    c = client(ScriptedPort(running=()))
    body = c.post("/ollama/api/show", json={"model": DEFAULT_MODEL_ID}).json()
    assert body["modelfile"].startswith(f"FROM {DEFAULT_MODEL_ID}") and body["template"]
    assert body["details"]["family"] == "llama" and "completion" in body["capabilities"]
    assert body["model_info"]["llama.context_length"] == 8192
    embed = c.post("/ollama/api/show", json={"name": EMBED_MODEL}).json()
    assert embed["capabilities"] == ["embedding"]
    assert c.post("/ollama/api/show", json={}).status_code == 400
    missing = c.post("/ollama/api/show", json={"name": "nobody/nothing"})
    assert missing.status_code == 404 and "nobody/nothing" in missing.json()["error"]


def test_ollama_embed_endpoints():
    port = ScriptedPort()
    c = client(port)
    body = c.post("/ollama/api/embed", json={"model": EMBED_MODEL, "input": ["a", "b"]}).json()
    assert body["embeddings"] == [[0.6, 0.8, 0.0], [0.6, 0.8, 1.0]] and body["prompt_eval_count"] == 6
    legacy = c.post("/ollama/api/embeddings", json={"model": EMBED_MODEL, "prompt": "a"}).json()
    assert legacy == {"embedding": [0.6, 0.8, 0.0]}
    assert c.post("/ollama/api/embed", json={"model": EMBED_MODEL, "input": []}).status_code == 400
    assert c.post("/ollama/api/embed", json={"model": DEFAULT_MODEL_ID, "input": "a"}).status_code == 400


def test_openapi_lists_the_ollama_routes():
    paths = client(ScriptedPort()).get("/api/openapi.json").json()["paths"]
    for path in ("/ollama/api/chat", "/ollama/api/generate", "/ollama/api/tags", "/ollama/api/show",
                 "/ollama/api/ps", "/ollama/api/version", "/v1/embeddings"):
        assert path in paths, path
    assert "/ollama/api/v1/chat" not in paths
