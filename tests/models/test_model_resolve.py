"""Finding model directories, installing from packages, and hub downloads (local server only)."""

from pathlib import Path

import pytest

from skulk.errors import NotFound
from skulk.models import (
    ModelCatalog,
    ModelDirInvalid,
    download_from_hub,
    ensure_model_dir,
    find_model_dir,
    validate_model_dir,
)
from skulk.types.ids import Memory
from skulk.types.models import ModelCard

REPO = "acme/tiny-llama"


def test_find_model_dir_checks_models_dir_then_extra_paths(tmp_path: Path, tiny_model) -> None:
    models, extra = tmp_path / "models", tmp_path / "ro"
    assert find_model_dir(REPO, models, [extra]) is None
    tiny_model(extra / "acme--tiny-llama")
    assert find_model_dir(REPO, models, [extra]) == extra / "acme--tiny-llama"
    tiny_model(models / "acme--tiny-llama")
    assert find_model_dir(REPO, models, [extra]) == models / "acme--tiny-llama"


def test_a_dir_without_config_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "acme--tiny-llama").mkdir()
    assert find_model_dir(REPO, tmp_path) is None


def test_ensure_returns_an_existing_dir_without_network(tmp_path: Path, tiny_model) -> None:
    directory = tiny_model(tmp_path / "acme--tiny-llama")
    assert ensure_model_dir(REPO, tmp_path, offline=True) == directory


def test_offline_and_absent_names_the_model_and_paths(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        ensure_model_dir(REPO, tmp_path / "models", [tmp_path / "ro"], ModelCatalog(), offline=True)
    message = info.value.message
    assert REPO in message and str(tmp_path / "models") in message
    assert str(tmp_path / "ro") in message
    assert "offline" in message and info.value.code == "model_not_found"


def test_offline_names_a_missing_source_package(tmp_path: Path) -> None:
    catalog = ModelCatalog(custom_dir=tmp_path / "cards")
    catalog.add_custom(_card(REPO, source_package="skulk-no-such-package"))
    with pytest.raises(NotFound, match="skulk-no-such-package"):
        ensure_model_dir(REPO, tmp_path / "models", catalog=catalog, offline=True)


def _card(model_id: str, **changes: object) -> ModelCard:
    fields = dict(
        model_id=model_id, n_layers=2, hidden_size=8, supports_tensor=True,
        tasks=["TextGeneration"], storage_size=Memory(in_bytes=1),
    )  # fmt: skip
    return ModelCard(**{**fields, **changes})


def test_a_package_with_a_model_dir_is_copied(
    tmp_path: Path, tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    package = site / "skulk_test_weights_pkg"
    tiny_model(package / "model")
    (package / "__init__.py").write_text("raise ImportError('must never be imported')\n")
    monkeypatch.syspath_prepend(str(site))
    catalog = ModelCatalog(custom_dir=tmp_path / "cards")
    catalog.add_custom(_card(REPO, source_package="skulk-test-weights-pkg"))
    path = ensure_model_dir(REPO, tmp_path / "models", catalog=catalog, offline=True)
    assert path == tmp_path / "models" / "acme--tiny-llama"
    assert validate_model_dir(path) is None and not (path / "__init__.py").exists()


# ---- hub downloads against a fake hub on 127.0.0.1 ---------------------------------------


@pytest.fixture
def hub(fake_hub, loopback_only, tiny_model, tmp_path: Path):
    source = tiny_model(tmp_path / "upload")
    (source / "README.md").write_text("not downloaded")
    (source / "pytorch_model.bin").write_bytes(b"not downloaded either")
    fake_hub.add_repo(REPO, source)
    return fake_hub


def test_download_from_hub(hub, tmp_path: Path) -> None:
    target = tmp_path / "models" / "acme--tiny-llama"
    assert download_from_hub(REPO, target, endpoint=hub.url) == target
    names = sorted(p.name for p in target.iterdir())
    assert names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    uploaded = (tmp_path / "upload" / "model.safetensors").read_bytes()
    assert (target / "model.safetensors").read_bytes() == uploaded
    assert [p.name for p in target.parent.iterdir() if ".partial-" in p.name] == []
    assert any("/resolve/" in r for r in hub.requests)


def test_ensure_model_dir_downloads_when_online(hub, tmp_path: Path) -> None:
    path = ensure_model_dir(REPO, tmp_path / "models", catalog=ModelCatalog(), endpoint=hub.url)
    assert path == tmp_path / "models" / "acme--tiny-llama" and validate_model_dir(path) is None
    count = len(hub.requests)
    assert ensure_model_dir(REPO, tmp_path / "models", endpoint=hub.url) == path
    assert len(hub.requests) == count  # found locally the second time


def test_offline_never_contacts_the_hub(hub, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="offline"):
        ensure_model_dir(REPO, tmp_path / "models", offline=True, endpoint=hub.url)
    assert hub.requests == []


def test_unknown_repo_is_not_found(hub, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="acme/missing"):
        ensure_model_dir("acme/missing", tmp_path / "models", endpoint=hub.url)
    assert not (tmp_path / "models" / "acme--missing").exists()


def test_a_repo_without_weights_is_rejected_and_leaves_nothing(
    fake_hub, loopback_only, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "llama"}')
    (source / "tokenizer.json").write_text("{}")
    fake_hub.add_repo(REPO, source)
    with pytest.raises(ModelDirInvalid, match="no \\*.safetensors"):
        ensure_model_dir(REPO, tmp_path / "models", endpoint=fake_hub.url)
    leftovers = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert leftovers == [".acme--tiny-llama.lock"]


def test_the_guard_blocks_other_hosts(loopback_only) -> None:
    import socket

    with pytest.raises(OSError, match="only 127.0.0.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
