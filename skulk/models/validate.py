"""Check that a model directory is loadable before a runner tries, and say what is wrong.

Stdlib only and cheap: it reads config.json, the tokenizer file names and each safetensors
header (not the tensor data), so a runner can fail with "model.safetensors: header is cut
off" instead of a stack trace from deep inside the loader.
"""

import json
import struct
from pathlib import Path

from skulk.errors import SkulkError

_MAX_HEADER = 100 * 1024 * 1024  # real headers are KBs to a few MBs; beyond this it is garbage
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
# Any one of these is a usable tokenizer (fast JSON, sentencepiece, BPE pair, WordPiece, tiktoken).
_TOKENIZER_SETS = (
    ("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"), ("vocab.txt",),
    ("tiktoken.model",),
)  # fmt: skip


class ModelDirInvalid(SkulkError):
    """A model directory that cannot be loaded; the message names the problem."""

    status = 500
    code = "model_dir_invalid"


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a readable safetensors file, or None if its header is sound."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return f"{path.name}: file is too short to be safetensors ({size} bytes)"
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(_MAX_HEADER, size - 8):
                return f"{path.name}: header length {header_len} exceeds the file ({size} bytes)"
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        return f"{path.name}: cannot read ({exc})"
    except (ValueError, UnicodeDecodeError):
        return f"{path.name}: header is not valid JSON (corrupt or truncated file)"
    if not isinstance(header, dict):
        return f"{path.name}: header is not a JSON object"
    return _tensor_table_problem(path.name, header, size - 8 - header_len)


def _tensor_table_problem(name: str, header: dict, data_len: int) -> str | None:
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            width = _DTYPE_BYTES.get(info["dtype"])
        except (KeyError, TypeError, ValueError):
            return f"{name}: malformed entry for tensor {tensor!r}"
        if not 0 <= start <= end <= data_len:
            return f"{name}: tensor {tensor!r} lies past the end of the file (truncated download?)"
        if width is not None and (end - start) != count * width:
            need = count * width
            return f"{name}: tensor {tensor!r} has {end - start} bytes, its shape needs {need}"
    return None


def _config_problem(directory: Path) -> str | None:
    config = directory / "config.json"
    if not config.is_file():
        return f"{directory}: missing config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{config}: not valid JSON ({exc})"
    if not isinstance(data, dict) or "model_type" not in data:
        return f"{config}: has no model_type"
    return None


def _weight_files(directory: Path) -> tuple[list[Path], str | None]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            return [], f"{index}: unreadable index ({exc})"
        missing = [s for s in shards if not (directory / s).is_file()]
        if missing:
            return [], f"{directory}: missing weight shard(s) {', '.join(missing)}"
        return [directory / s for s in shards], None
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return [], f"{directory}: no *.safetensors weight files"
    return files, None


def validate_model_dir(path: Path) -> str | None:
    """None if `path` looks loadable, else one message naming the first problem found."""
    directory = Path(path)
    if not directory.is_dir():
        return f"{directory}: model directory does not exist"
    if problem := _config_problem(directory):
        return problem
    files, problem = _weight_files(directory)
    if problem:
        return problem
    for weight_file in files:
        if problem := safetensors_problem(weight_file):
            return f"{directory}: {problem}"
    if not any(all((directory / f).is_file() for f in names) for names in _TOKENIZER_SETS):
        return f"{directory}: no tokenizer (tokenizer.json, tokenizer.model, vocab.json+merges.txt)"
    return None


def require_valid_model_dir(path: Path) -> Path:
    """`path` if it validates, else raise ModelDirInvalid with the problem as the message."""
    if problem := validate_model_dir(path):
        raise ModelDirInvalid(problem)
    return Path(path)
