"""/metrics, /admin/restart and the events header, in process with a fake cluster port."""

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.api.metrics import metrics_for
from skulk.models import ModelCatalog
from skulk.types.chunks import ErrorChunk, TokenChunk
from skulk.types.runners import RunnerFailed, RunnerReady
from skulk.types.state import State
from tests.factories import ring_instance


class OpsPort:
    node_id = "a"
    friendly_name = "fake"
    session = None
    is_master = True
    history = []
    catalog = ModelCatalog()
    event_log_mode = "counting_only"

    def __init__(self):
        inst = ring_instance("i1", ["a", "b"])
        runners = dict(inst.shard_assignments.node_to_runner)
        self.state = State(instances={"i1": inst}, runners={runners["a"]: RunnerReady(), runners["b"]: RunnerFailed()})
        self.restarts = 0

    def live_telemetry(self):
        return {}, {}

    def diagnostics(self):
        return {"counters": {}}

    def metrics_snapshot(self):
        return {"open_streams": 2, "connected_peers": 1, "elections": 3, "events_applied": 40,
                "event_log_mode": self.event_log_mode, "counters": {"malformed_gossip": 5}}

    def request_restart(self):
        self.restarts += 1
        return self.restarts == 1


def scrape(client) -> dict:
    text = client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_are_counted_by_route_template_and_status():
    c = TestClient(create_app(OpsPort()), raise_server_exceptions=False)
    for path in ("/node_id", "/node_id", "/instance/i1", "/instance/nope", "/no/such/path"):
        c.get(path)
    m = scrape(c)
    key = "skulk_http_requests_total"
    assert m[(key, (("method", "GET"), ("route", "/node_id"), ("status", "200")))] == 2
    assert m[(key, (("method", "GET"), ("route", "/instance/{instance_id}"), ("status", "404")))] == 1
    assert m[(key, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1


def test_node_numbers_are_read_at_scrape_time():
    port = OpsPort()
    c = TestClient(create_app(port))
    m = scrape(c)
    assert m[("skulk_open_streams", ())] == 2 and m[("skulk_elections_total", ())] == 3
    assert m[("skulk_events_indexed_total", ())] == 40
    assert m[("skulk_event_log_mode", (("mode", "counting_only"),))] == 1
    assert m[("skulk_event_log_mode", (("mode", "persisting"),))] == 0
    assert m[("skulk_malformed_messages_total", (("channel", "gossip"),))] == 5
    # only this node's runner counts: b's failed runner is not ours
    assert m[("skulk_runners", (("status", "RunnerReady"),))] == 1
    assert m[("skulk_runners", (("status", "RunnerFailed"),))] == 0
    port.event_log_mode = "persisting"
    assert scrape(c)[("skulk_event_log_mode", (("mode", "persisting"),))] == 1


def test_generation_meter_records_ttft_tokens_and_decode_speed():
    port = OpsPort()
    c = TestClient(create_app(port))
    meter = metrics_for(port).meter(started=10.0)
    meter.chunk(TokenChunk(text="a", token_ids=[1]), now=10.5)
    meter.chunk(TokenChunk(text="bc", token_ids=[2, 3]), now=11.0)
    meter.chunk(TokenChunk(text="d", token_ids=[4], finish_reason="stop"), now=11.5)
    metrics_for(port).meter(started=0.0).failed(ErrorChunk(error_type="boom", error_message="x"))
    m = scrape(c)
    assert m[("skulk_generated_tokens_total", ())] == 4
    assert m[("skulk_time_to_first_token_seconds_sum", ())] == 0.5
    assert m[("skulk_decode_tokens_per_second_sum", ())] == 3.0  # 3 tokens after the first in 1 s
    assert m[("skulk_generations_total", (("outcome", "finished"),))] == 1
    assert m[("skulk_generations_total", (("outcome", "failed"),))] == 1


def test_restart_is_refused_while_pending_and_events_carry_the_log_mode():
    port = OpsPort()
    c = TestClient(create_app(port), raise_server_exceptions=False)
    assert c.post("/admin/restart").json() == {"status": "restarting", "node_id": "a"}
    again = c.post("/admin/restart")
    assert again.status_code == 409 and again.json()["error"]["code"] == "restart_already_pending"
    unknown = c.post("/admin/restart", params={"node_id": "nobody"})
    assert unknown.status_code == 404
    assert c.get("/events").headers["X-Skulk-Event-Log-Mode"] == "counting_only"


def test_tracing_flag_round_trips_through_a_command():
    port = OpsPort()
    sent = []

    async def send_command(command):
        sent.append(command)
        port.state = port.state.model_copy(update={"tracing_enabled": command.enabled})

    port.send_command = send_command
    c = TestClient(create_app(port), backend="trio")
    assert c.get("/v1/tracing").json() == {"enabled": False}
    assert c.put("/v1/tracing", json={"enabled": True}).json() == {"enabled": True}
    assert [type(x).__name__ for x in sent] == ["SetTracingEnabled"] and c.get("/v1/tracing").json()["enabled"]
    assert c.put("/v1/tracing", json={"enabled": "maybe"}).status_code == 422
