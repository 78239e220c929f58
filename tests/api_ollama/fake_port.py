"""An in-process ClusterPort whose "cluster" answers each command from a script, so the
Ollama and embeddings routes can be checked without starting a node."""

from collections.abc import Callable
from typing import Any

from skulk.models import DEFAULT_MODEL_ID
from skulk.testing.fake_port import FAKE_NODE_ID as NODE
from skulk.testing.fake_port import FakePort, with_ready_runners
from skulk.types import commands as cmd
from skulk.types.chunks import EmbeddingChunk, TokenChunk, Usage
from skulk.types.downloads import DownloadCompleted
from skulk.types.state import State
from tests.factories import ring_instance

EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def greeting(command: cmd.GenerateText) -> list:
    return [TokenChunk(text="Hel"), TokenChunk(text="lo"),
            TokenChunk(text="", finish_reason="stop", usage=Usage(prompt_tokens=7, completion_tokens=2))]


def unit_vectors(command: cmd.EmbedText) -> list:
    texts = command.task_params.input
    return [EmbeddingChunk(embeddings=[[0.6, 0.8, float(i)] for i in range(len(texts))], token_count=3 * len(texts))]


class ScriptedPort(FakePort):
    def __init__(self, *, running: tuple[str, ...] = (DEFAULT_MODEL_ID, EMBED_MODEL), downloaded: tuple[str, ...] = (),
                 generate: Callable[[Any], list] = greeting, embed: Callable[[Any], list] = unit_vectors):
        super().__init__(is_master=True, script={cmd.GenerateText: generate, cmd.EmbedText: embed})
        instances = {f"i{n}": ring_instance(f"i{n}", [NODE], self.catalog.require(m)) for n, m in enumerate(running)}
        downloads = {NODE: [DownloadCompleted(node_id=NODE, model_id=m) for m in downloaded]}
        self.state = with_ready_runners(State(instances=instances, downloads=downloads))
