"""One real node serving the default model, shared by every test in this package, plus its clients.

The node runs with the engine's test hook SKULK_TEST_SCRIPTED_REPLIES: a user message containing
one of SCRIPTS' triggers gets that exact reply instead of sampled tokens, so tool calls and
reasoning (which the 135M model will not produce on demand) come out as the test needs.
"""

import json

import pytest

from skulk.engine.generate import SCRIPTED_REPLIES_ENV
from skulk.testing.cluster import LocalCluster
from skulk.testing.serving import ready_instance
from skulk.types.ids import model_dir_name
from tests.api_compat.helpers import SCRIPTS
from tests.serving.conftest import DEFAULT_MODEL  # models_dir comes from tests/conftest.py


@pytest.fixture(scope="package")
def node(tmp_path_factory, models_dir):  # noqa: F811
    cluster = LocalCluster(tmp_path_factory.mktemp("api_compat"), extra_env={
        "SKULK_MODELS_DIR": str(models_dir), "SKULK_SETTLE_GRACE_SECONDS": "5",
        SCRIPTED_REPLIES_ENV: json.dumps(SCRIPTS)})
    try:
        n = cluster.add_node("solo")
        cluster.wait_ready(n)
        ready_instance(n, DEFAULT_MODEL, timeout=180)
        yield n
    finally:
        cluster.stop_all()


@pytest.fixture(scope="package")
def tokenizer(models_dir):  # noqa: F811
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(models_dir / model_dir_name(DEFAULT_MODEL))


@pytest.fixture(scope="package")
def oai(node):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=node.url + "/v1", api_key="dummy", max_retries=0, timeout=120)


@pytest.fixture(scope="package")
def claude(node):
    anthropic = pytest.importorskip("anthropic")
    return anthropic.Anthropic(base_url=node.url, api_key="dummy", max_retries=0, timeout=120)
