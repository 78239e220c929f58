"""An in-process ClusterPort whose "cluster" answers each command from a script, so the
Ollama and embeddings routes can be checked without starting a node."""

import math
from collections.abc import Callable
from typing import Any

import trio

from skulk.models import DEFAULT_MODEL_ID, ModelCatalog
from skulk.types import commands as cmd
from skulk.types.chunks import EmbeddingChunk, TokenChunk, Usage
from skulk.types.downloads import DownloadCompleted
from skulk.types.state import State
from tests.factories import ring_instance

EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
NODE = "12D3KooWfake"


def greeting(command: cmd.GenerateText) -> list:
    return [TokenChunk(text="Hel"), TokenChunk(text="lo"),
            TokenChunk(text="", finish_reason="stop", usage=Usage(prompt_tokens=7, completion_tokens=2))]


def unit_vectors(command: cmd.EmbedText) -> list:
    texts = command.task_params.input
    return [EmbeddingChunk(embeddings=[[0.6, 0.8, float(i)] for i in range(len(texts))], token_count=3 * len(texts))]


class ScriptedPort:
    friendly_name = "fake"
    session = None
    is_master = True
    history: list = []

    def __init__(self, *, running: tuple[str, ...] = (DEFAULT_MODEL_ID, EMBED_MODEL), downloaded: tuple[str, ...] = (),
                 generate: Callable[[Any], list] = greeting, embed: Callable[[Any], list] = unit_vectors):
        self.node_id = NODE
        self.catalog = ModelCatalog()
        instances = {f"i{n}": ring_instance(f"i{n}", [NODE], self.catalog.require(m)) for n, m in enumerate(running)}
        downloads = {NODE: [DownloadCompleted(node_id=NODE, model_id=m) for m in downloaded]}
        self.state = State(instances=instances, downloads=downloads)
        self.script = {cmd.GenerateText: generate, cmd.EmbedText: embed}
        self.sent: list = []
        self._streams: dict[str, trio.MemorySendChannel] = {}

    def open_stream(self, command_id: str) -> trio.MemoryReceiveChannel:
        send, recv = trio.open_memory_channel(math.inf)
        self._streams[command_id] = send
        return recv

    def close_stream(self, command_id: str) -> None:
        send = self._streams.pop(command_id, None)
        if send is not None:
            send.close()

    def cancel_stream(self, command_id: str) -> bool:
        return False

    async def send_command(self, command: Any) -> None:
        self.sent.append(command)
        reply = self.script.get(type(command))
        if reply is not None:
            for chunk in reply(command):
                self._streams[command.command_id].send_nowait(chunk)

    def sent_of(self, kind: type) -> list:
        return [c for c in self.sent if isinstance(c, kind)]

    def live_telemetry(self):
        return {}, {}

    def node_memory(self):
        return {}

    def node_names(self):
        return {}

    def diagnostics(self):
        return {"counters": {}}
