"""Model ids are validated before they become paths: every real hub id passes, anything that could
leave its base directory is refused (ValueError in code, 400 with the error envelope over HTTP)."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.errors import BadRequest
from skulk.models import ModelCatalog, find_model_dir
from skulk.store.client import LocalBackend
from skulk.store.host import StoreHost
from skulk.store.registry import Registry, RegistryEntry
from skulk.testing.fake_port import FakePort
from skulk.types.ids import (
    MAX_MODEL_ID_LEN,
    InvalidModelId,
    model_dir_name,
    model_id_of_dir_name,
    validate_model_id,
)
from skulk.types.models import ModelCard
from tests.models.conftest import write_tiny_model

REAL_IDS = [
    "HuggingFaceTB/SmolLM2-135M-Instruct", "mlx-community/Llama-3.2-1B-Instruct-4bit",
    "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit", "sentence-transformers/all-MiniLM-L6-v2",
    "Qwen/Qwen2.5-0.5B-Instruct", "google/gemma-2-2b_it", "org/a.b..c", "org/name--with--dashes",
    "gpt2", "m", "a/b",
]
HOSTILE_IDS = [
    "", "..", ".", "../x", "../../etc", "a/../../etc", "/etc/passwd", "/", "a/", "/a", "a//b", "a/b/c",
    "org/..", "org/.", "./a", ".hidden/x", "org/.partial", "a\\b", "..\\..\\x", "a\x00b", "a/b\n",
    "a\tb/c", "a\x7f/b", "x" * (MAX_MODEL_ID_LEN + 1), "a--b/c", "a--b", "org/na me", "org/ünï",
    "C:/x", "org/name?x", "~/x",
]


@pytest.mark.parametrize("model_id", REAL_IDS)
def test_every_real_id_passes_and_reads_back_from_its_dir_name(model_id):
    assert validate_model_id(model_id) == model_id
    assert model_id_of_dir_name(model_dir_name(model_id)) == model_id


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_hostile_ids_are_refused_as_a_400_and_a_value_error(model_id):
    with pytest.raises(InvalidModelId) as info:
        model_dir_name(model_id)
    assert isinstance(info.value, ValueError) and isinstance(info.value, BadRequest)
    assert info.value.status == 400 and info.value.param == "model_id"


def test_every_builtin_card_has_a_valid_id():
    for card in ModelCatalog().all():
        validate_model_id(card.model_id)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40),
                 st.text(alphabet="./\\-_aZ9\x00\n~:", max_size=20),
                 st.lists(st.sampled_from(["..", ".", "", "a", "-", "/", "\\", "b.c"]), max_size=6).map("/".join)))
def test_an_id_is_refused_or_its_path_stays_inside_the_base(tmp_path, model_id):
    base = tmp_path.resolve()
    try:
        name = model_dir_name(model_id)
    except InvalidModelId:
        return
    path = (base / name).resolve()
    assert path.parent == base and path.name == name and "/" not in name
    assert not name.startswith(".")  # never one of the store's own hidden entries
    assert model_id_of_dir_name(name) == model_id  # one id per directory, both ways


def test_model_lookups_refuse_an_id_that_would_escape(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.json").write_text("{}")
    models = tmp_path / "models"
    models.mkdir()
    assert find_model_dir("org/real-missing", models) is None
    with pytest.raises(InvalidModelId):
        find_model_dir("../etc", models)


def test_custom_cards_refuse_escaping_ids_and_write_nothing(tmp_path):
    custom = tmp_path / "cards"
    catalog = ModelCatalog(custom_dir=custom)
    card = ModelCatalog().all()[0]
    for bad in ("../../evil", "org/../../evil", "/abs/evil"):
        with pytest.raises(BadRequest):
            catalog.add_custom(card.model_copy(update={"model_id": bad}))
        with pytest.raises(BadRequest):
            catalog.delete_custom(bad)
    assert not custom.exists() or list(custom.iterdir()) == []
    assert list(tmp_path.iterdir()) in ([], [custom])


def test_registry_entries_with_unsafe_ids_are_refused_and_skipped(tmp_path):
    with pytest.raises(ValueError):
        RegistryEntry(model_id="../x", store_path="/", files=[], downloaded_at="t", total_bytes=0)
    good = RegistryEntry(model_id="org/good", store_path="/", files=[], downloaded_at="t", total_bytes=0)
    doc = {"entries": [good.model_dump(), {**good.model_dump(), "model_id": "../../evil"}]}
    (tmp_path / "registry.json").write_text(__import__("json").dumps(doc))
    assert [e.model_id for e in Registry(tmp_path).entries()] == ["org/good"]  # the bad one hides nothing


class _Store:
    """What the store routes read from app.state.store, over a real StoreHost on a tmp path."""

    def __init__(self, host: StoreHost):
        self.host, self.config = host, object()
        self.purges: list = []

    def backend(self):
        return LocalBackend(self.host, "http://127.0.0.1:1")

    async def request_purge(self, model_id):
        self.purges.append(model_id)
        return {"commandId": "c1"}


def _files_under(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


@pytest.fixture
def api(tmp_path):
    store = _Store(StoreHost(tmp_path / "store", allow_hf_fallback=True, offline=True))
    app = create_app(FakePort())
    app.state.store = store
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, store


def _assert_400(resp, param="model_id"):
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param


@pytest.mark.parametrize("bad", ["../../etc", "a/../../etc/passwd", "/etc/passwd", "a\\..\\b", "a/b/c", ".."])
def test_http_routes_answer_400_for_path_like_ids_and_create_nothing(api, tmp_path, bad):
    c, store = api
    before = _files_under(tmp_path)
    _assert_400(c.post("/place_instance", json={"model_id": bad}))
    _assert_400(c.post("/store/purge-staging", json={"modelId": bad}))
    quoted = bad.replace("%", "%25").replace("/", "%2F").replace(".", "%2E").replace("\\", "%5C")
    _assert_400(c.post(f"/store/models/{quoted}/download"))
    _assert_400(c.get(f"/store/models/{quoted}/download/status"))
    _assert_400(c.delete(f"/store/models/{quoted}"))
    assert store.purges == [] and store.host.jobs == {}
    assert _files_under(tmp_path) == before


def test_http_routes_still_take_real_ids(api):
    c, store = api
    assert c.post("/place_instance", json={"model_id": "nobody/nothing"}).status_code == 404  # valid, unknown
    assert c.post("/store/purge-staging", json={"modelId": "org/model"}).status_code == 200
    assert c.post("/store/purge-staging", json={}).status_code == 200
    assert store.purges == ["org/model", None]
    assert c.get("/store/models/org/model/download/status").status_code == 404
    assert c.post("/store/models/org/model/download").status_code == 503  # offline store host


def test_http_create_instance_refuses_an_escaping_model_id(api):
    c, _ = api
    card = ModelCard.model_validate(ModelCatalog().all()[0].model_dump()).model_copy(update={"model_id": "../x"})
    shard = {"PipelineShardMetadata": {"modelCard": card.model_dump(mode="json", by_alias=True), "deviceRank": 0,
                                       "worldSize": 1, "startLayer": 0, "endLayer": card.n_layers,
                                       "nLayers": card.n_layers}}
    instance = {"MlxRingInstance": {"instanceId": "i1", "hostsByNode": {}, "ephemeralPort": 50000,
                                    "shardAssignments": {"modelId": "../x", "runnerToShard": {"r1": shard},
                                                         "nodeToRunner": {"n1": "r1"}}}}
    _assert_400(c.post("/instance", json={"instance": instance}))


def test_the_store_host_refuses_unsafe_ids_and_skips_unsafe_dir_names(tmp_path):
    host = StoreHost(tmp_path / "store", allow_hf_fallback=True)
    with pytest.raises(InvalidModelId):
        host.request_download("../../etc")
    assert host.jobs == {}
    write_tiny_model(tmp_path / "store" / "org--.hidden")  # a loadable model whose name reads "org/.hidden"
    write_tiny_model(tmp_path / "store" / "org--fine")
    assert host.register_unlisted() == ["org/fine"]  # the unsafe one is skipped, not a crash
