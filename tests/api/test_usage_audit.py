"""The audit file (0600, bounded, survives a restart), usage filters, and the 429 in every API's shape."""

from datetime import datetime, timezone

from skulk.api.audit import AuditLog
from skulk.api.routes_usage import usage_report
from skulk.state.usage import key_series, project_series, record
from skulk.types.state import State
from tests.api.test_projects_routes import MODEL, setup


def test_audit_file_is_private_bounded_and_read_back(tmp_path):
    path = tmp_path / "home" / "audit.jsonl"
    log = AuditLog(path, "n1", keep=5)
    for i in range(12):
        log.record({"at": f"2026-01-01T00:00:{i:02d}", "i": i})
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text().splitlines()) < 10  # cut back to `keep` once it doubled
    with path.open("a") as f:
        f.write('{"torn": ')  # a crash mid-line
    again = AuditLog(path, "n1", keep=5)
    assert [e["i"] for e in again.newest(3)] == [11, 10, 9]


def test_usage_report_filters_by_key_and_project():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    usage = {key_series("k1"): record(None, int(now), requests=2), key_series("k2"): record(None, int(now), requests=1),
             project_series("p"): record(None, int(now), requests=3, rejections=1)}
    state = State(usage=usage)
    everything = usage_report(state, now)
    assert set(everything["keys"]) == {"k1", "k2"} and everything["projects"]["p"]["1m"]["rejections"] == 1
    assert usage_report(state, now, key_id="k1") == {"keys": {"k1": everything["keys"]["k1"]}, "projects": {}}
    assert usage_report(state, now, project="p")["keys"] == {}
    both = usage_report(state, now, key_id="k2", project="p")
    assert set(both["keys"]) == {"k2"} and set(both["projects"]) == {"p"}
    assert everything["keys"]["k1"]["total"]["requests"] == 2


def test_a_refusal_is_429_with_the_headers_in_anthropic_and_ollama_shapes_too():
    port, client, admin, user = setup()
    client.post("/v1/projects", headers=admin, json={"name": "team", "requests_per_minute": 1})
    message = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/messages", headers=user, json=message).status_code == 200
    refused = client.post("/v1/messages", headers=user, json=message)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["Retry-After"] and refused.headers["X-RateLimit-Limit"] == "1"
    ollama = client.post("/ollama/api/chat", headers=user, json={"model": MODEL, "stream": False,
                                                                 "messages": [{"role": "user", "content": "hi"}]})
    assert ollama.status_code == 429 and "requests per minute" in ollama.json()["error"]
    assert ollama.headers["X-RateLimit-Reset"]
