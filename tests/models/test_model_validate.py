import json
import struct
from pathlib import Path

import numpy as np
import pytest

from skulk.models import ModelDirInvalid, require_valid_model_dir, validate_model_dir


@pytest.fixture
def model(tmp_path: Path, tiny_model) -> Path:
    return tiny_model(tmp_path / "acme--tiny")


def test_a_good_dir_passes(model: Path) -> None:
    assert validate_model_dir(model) is None
    assert require_valid_model_dir(model) == model


def test_missing_dir(tmp_path: Path) -> None:
    assert "does not exist" in validate_model_dir(tmp_path / "nope")


def test_missing_config(model: Path) -> None:
    (model / "config.json").unlink()
    assert "missing config.json" in validate_model_dir(model)


def test_config_not_json(model: Path) -> None:
    (model / "config.json").write_text("{not json")
    assert "config.json: not valid JSON" in validate_model_dir(model)


def test_missing_weights(model: Path) -> None:
    (model / "model.safetensors").unlink()
    assert "no *.safetensors weight files" in validate_model_dir(model)


def test_missing_tokenizer(model: Path) -> None:
    (model / "tokenizer.json").unlink()
    assert "no tokenizer" in validate_model_dir(model)


def test_garbage_safetensors(model: Path) -> None:
    (model / "model.safetensors").write_bytes(b"\xff" * 64)
    message = validate_model_dir(model)
    assert "model.safetensors" in message and "header length" in message


def test_short_safetensors(model: Path) -> None:
    (model / "model.safetensors").write_bytes(b"abc")
    assert "too short" in validate_model_dir(model)


def test_header_not_json(model: Path) -> None:
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 4) + b"{{{{" + b"\0" * 16)
    assert "header is not valid JSON" in validate_model_dir(model)


def test_truncated_safetensors(model: Path) -> None:
    path = model / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])  # a download cut short
    message = validate_model_dir(model)
    assert "lies past the end of the file" in message and "lm_head.weight" in message


def test_shape_and_size_disagree(model: Path, tiny_safetensors) -> None:
    path = model / "model.safetensors"
    tiny_safetensors(path, {"w": np.zeros(4, np.float32)})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["w"]["shape"] = [5]
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    assert "its shape needs 20" in validate_model_dir(model)


def test_missing_shard_from_index(model: Path) -> None:
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = {"weight_map": {"a": shards[0], "b": shards[1]}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    (model / "model.safetensors").rename(model / "model-00001-of-00002.safetensors")
    assert "missing weight shard(s) model-00002-of-00002.safetensors" in validate_model_dir(model)


def test_require_raises_with_the_message(model: Path) -> None:
    (model / "config.json").unlink()
    with pytest.raises(ModelDirInvalid, match="missing config.json") as info:
        require_valid_model_dir(model)
    assert info.value.code == "model_dir_invalid"
