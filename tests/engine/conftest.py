import pytest

from .helpers import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("engine") / "tiny-llama")


@pytest.fixture(scope="session")
def loaded(tiny_model_dir):
    from skulk.engine.loading import load_shard

    return load_shard(tiny_model_dir)
