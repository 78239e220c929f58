"""Runner frames are typed models on both sides of the pipe, validated where they are read."""

import msgpack
import pytest
from pydantic import ValidationError

from skulk.runner.frames import MalformedFrame, encode_frame, parse_frame
from skulk.types import runner_frames as frames
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

PARAMS = TextGenerationTaskParams(model="m", input=[ChatMessage(role="user", content="hi")], max_output_tokens=4)


def _wire(frame) -> dict:
    body = encode_frame(frame)[4:]
    return msgpack.unpackb(body, raw=False)


def test_a_request_frame_round_trips_through_the_wire():
    sent = frames.Generate(id="t1", params=PARAMS, trace=True, priority="high")
    got = frames.to_runner(_wire(sent))
    assert isinstance(got, frames.Generate) and got == sent and got.params.max_output_tokens == 4
    assert _wire(frames.Cancel(id="t1")) == {"op": "cancel", "id": "t1"}
    assert isinstance(frames.to_runner({"op": "shutdown"}), frames.Shutdown)


def test_every_runner_frame_parses_into_its_model():
    samples = [
        ({"op": "connected", "rank": 1, "world_size": 2}, frames.Connected),
        ({"op": "loading", "layers_loaded": 3, "total_layers": 9}, frames.Loading),
        ({"op": "ready", "rank": 0, "world_size": 1, "start_layer": 0, "end_layer": None, "active_memory": 5,
          "engine": "llama_cpp", "context_limit": 2048}, frames.Ready),
        ({"op": "chunk", "id": "t", "text": "a", "token_ids": [1], "finished": True, "finish_reason": "stop",
          "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}, "stop_sequence": None}, frames.Chunk),
        ({"op": "embedding", "id": "t", "embeddings": [[0.5]], "prompt_tokens": 2}, frames.Embedding),
        ({"op": "error", "id": None, "code": "runner_busy", "message": "x"}, frames.Error),
        ({"op": "warmed", "tokens": 4}, frames.Warmed),
        ({"op": "paused", "rss_bytes": 10}, frames.Paused),
        ({"op": "traces", "id": "t", "kind": "text", "spans": [{"name": "decode"}]}, frames.Traces),
        ({"op": "fatal", "code": "ring_peer_lost", "message": "gone"}, frames.Fatal),
    ]
    for raw, model in samples:
        parsed = parse_frame(raw)
        assert isinstance(parsed, model) and parsed.wire()["op"] == raw["op"]


def test_a_newer_field_is_ignored_but_a_wrong_shape_is_malformed():
    assert parse_frame({"op": "warmed", "tokens": 1, "added_later": True}) == frames.Warmed(tokens=1)
    for bad in ({"op": "chunk", "text": "no id"}, {"op": "chunk", "id": "t", "token_ids": "nope"},
                {"op": "nonsense"}, {"no": "op"}, {"op": "paused", "rss_bytes": -1}):
        with pytest.raises(MalformedFrame):
            parse_frame(bad)
    with pytest.raises(ValidationError):
        frames.to_runner({"op": "generate", "id": "t", "params": {"model": "m"}})  # no input


def test_the_runner_answers_a_malformed_request_and_ignores_garbage():
    import io

    from skulk.engine.framing import read_frame
    from skulk.engine.worker_main import _handle

    class _Engine:
        submitted: list = []

        def submit(self, rid, params, trace=False, priority=None):
            self.submitted.append((rid, params.model, priority))

    out, engine = io.BytesIO(), _Engine()
    assert _handle({"op": "generate", "id": "bad", "params": {"model": "m"}}, engine, out)
    assert _handle({"op": "what"}, engine, out)  # ignored: no answer, the process goes on
    assert _handle(frames.Generate(id="ok", params=PARAMS, priority="low").wire(), engine, out)
    assert not _handle({"op": "shutdown"}, engine, out)
    out.seek(0)
    reply = frames.from_runner(read_frame(out))
    assert isinstance(reply, frames.Error) and reply.id == "bad" and reply.code == "invalid_request"
    assert read_frame(out) is None and engine.submitted == [("ok", "m", "low")]
