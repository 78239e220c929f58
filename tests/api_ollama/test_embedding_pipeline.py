"""The pure links of the embedding path: the master's decision, the runner frame -> output ->
chunk mapping, and the data-plane encoding of an EmbeddingChunk."""

from datetime import datetime, timezone

import pytest

from skulk import codec
from skulk.errors import NotFound
from skulk.master.sequencer import Sequencer
from skulk.master.serving import decide_embed_text
from skulk.runner.outputs import embedding_output
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.chunks import DataChunk, EmbeddingChunk
from skulk.types.tasks import TextEmbedding, TextEmbeddingTaskParams
from tests.factories import ring_instance

from .fake_port import EMBED_MODEL


def test_embed_text_becomes_a_text_embedding_task_on_an_instance_of_the_model():
    from skulk.models import ModelCatalog

    seq = Sequencer()
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["a"], ModelCatalog().require(EMBED_MODEL))),
              datetime(2026, 1, 1, tzinfo=timezone.utc))
    params = TextEmbeddingTaskParams(model=EMBED_MODEL, input=["a", "b"])
    [created] = decide_embed_text(seq.state, cmd.EmbedText(task_params=params, owner_node="a"), task_id="t1")
    assert isinstance(created.task, TextEmbedding) and created.task.instance_id == "i1"
    assert created.task.owner_node == "a" and created.task.model == EMBED_MODEL  # the texts stay off the log
    assert "task_params" not in created.task.model_dump()
    with pytest.raises(NotFound):
        decide_embed_text(seq.state, cmd.EmbedText(task_params=params.model_copy(update={"model": "x/y"})), task_id="t")


def test_empty_input_is_not_a_valid_task():
    with pytest.raises(ValueError):
        TextEmbeddingTaskParams(model=EMBED_MODEL, input=[])


def test_runner_frame_to_output_to_wire_chunk():
    out = embedding_output("t1", {"op": "embedding", "id": "t1", "embeddings": [[0.25, -1.5]], "prompt_tokens": 4})
    assert out.finished and out.embeddings == [[0.25, -1.5]] and out.usage.prompt_tokens == 4
    chunk = EmbeddingChunk(embeddings=out.embeddings, token_count=out.usage.prompt_tokens)
    wire = DataChunk(command_id="c1", sequence=0, chunk=chunk)
    back = codec.decode(codec.encode(wire), DataChunk)
    assert back.chunk == chunk
