"""Route resolution, pure: (state, routes, requested, may_use) -> the model id that serves."""

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from skulk.api.model_routes import RouteForbidden, is_route_name, resolve_model, route_views, routes_from_config
from skulk.config.model import Settings
from skulk.config.routes import ModelRoute, check_routes
from skulk.errors import NotFound
from skulk.types.runners import RunnerLoading, RunnerReady
from skulk.types.state import State
from tests.factories import card, ring_instance

EMBED = card("org/embed").model_copy(update={"tasks": ["TextEmbedding"], "capabilities": ["embedding"]})


def state_with(**models: str) -> State:
    """One instance per model id (keyword: instance id -> "model:ready" or "model:loading")."""
    instances, runners = {}, {}
    for iid, spec in models.items():
        model, status = spec.rsplit(":", 1)
        model_card = EMBED if model == "org/embed" else card(model)
        inst = ring_instance(iid, ["n1"], model_card)
        instances[iid] = inst
        for rid in inst.shard_assignments.runner_to_shard:
            runners[rid] = RunnerReady() if status == "ready" else RunnerLoading()
    return State(instances=instances, runners=runners)


ROUTES = (ModelRoute(name="reasoning", models=("org/a", "org/b", "org/c")),)


def test_first_ready_model_of_the_route_serves():
    state = state_with(i1="org/a:loading", i2="org/b:ready", i3="org/c:ready")
    assert resolve_model(state, ROUTES, "reasoning") == "org/b"


def test_first_with_any_instance_when_none_is_ready():
    state = state_with(i2="org/b:loading", i3="org/c:loading")
    assert resolve_model(state, ROUTES, "reasoning") == "org/b"


def test_next_model_when_the_first_has_no_instance():
    assert resolve_model(state_with(i1="org/c:ready"), ROUTES, "reasoning") == "org/c"
    assert resolve_model(state_with(i1="org/a:ready", i3="org/c:ready"), ROUTES, "reasoning") == "org/a"


def test_no_instance_for_any_model_names_the_route():
    with pytest.raises(NotFound) as exc:
        resolve_model(state_with(i1="org/z:ready"), ROUTES, "reasoning")
    assert "reasoning" in exc.value.message and exc.value.code == "model_not_found"


def test_a_model_id_resolves_to_itself():
    assert resolve_model(State(), ROUTES, "org/unknown") == "org/unknown"


def test_models_the_caller_may_not_use_are_skipped():
    state = state_with(i1="org/a:ready", i2="org/b:ready")
    assert resolve_model(state, ROUTES, "reasoning", lambda m: m != "org/a") == "org/b"
    with pytest.raises(RouteForbidden):
        resolve_model(state, ROUTES, "reasoning", lambda m: False)


def test_capability_routes_come_from_the_cards():
    state = state_with(i1="org/t2:ready", i2="org/embed:ready", i3="org/t1:loading")
    assert resolve_model(state, (), "capability:embedding") == "org/embed"
    assert resolve_model(state, (), "capability:text") == "org/t2"  # ready first, then by id
    with pytest.raises(NotFound):
        resolve_model(state, (), "capability:vision")


def test_views_list_routes_then_capabilities():
    state = state_with(i1="org/b:ready", i2="org/embed:ready")
    views = route_views(state, ROUTES)
    assert [(v.name, v.kind, v.served_by) for v in views] == [
        ("reasoning", "route", "org/b"), ("capability:embedding", "capability", "org/embed"),
        ("capability:text", "capability", "org/b")]


def test_config_refuses_colliding_or_reserved_names():
    with pytest.raises(ValidationError):
        Settings(routes=[{"name": "r", "models": ["org/a"]}, {"name": "r", "models": ["org/b"]}])
    with pytest.raises(ValidationError):
        Settings(routes=[{"name": "capability:text", "models": ["org/a"]}])
    with pytest.raises(ValidationError):
        Settings(routes=[{"name": "a", "models": ["b"]}, {"name": "b", "models": ["org/x"]}])
    with pytest.raises(ValidationError):
        Settings(routes=[{"name": "org/a", "models": ["org/x"]}])  # a "/" name would shadow a repo id
    with pytest.raises(ValidationError):
        Settings(routes=[{"name": "empty", "models": []}])
    assert routes_from_config({"routes": [{"name": "r", "models": ["org/a"]}] * 2}) == ()  # invalid: none


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
model_ids = st.from_regex(r"org/[a-z]{1,6}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=6, unique=True), st.lists(model_ids, min_size=1, max_size=5),
       st.dictionaries(model_ids, st.booleans(), max_size=6), st.data())
def test_resolution_always_picks_a_listed_model_with_the_best_status(route_names, models, running, data):
    routes = check_routes(tuple(ModelRoute(name=n, models=tuple(models)) for n in route_names))
    state = state_with(**{f"i{i}": f"{m}:{'ready' if ready else 'loading'}" for i, (m, ready) in enumerate(running.items())})
    name = data.draw(st.sampled_from(route_names))
    assert is_route_name(name, routes)
    present = [m for m in models if m in running]
    if not present:
        with pytest.raises(NotFound):
            resolve_model(state, routes, name)
        return
    chosen = resolve_model(state, routes, name)
    ready = [m for m in present if running[m]]
    assert chosen == (ready[0] if ready else present[0])
    assert resolve_model(state, routes, chosen) == chosen  # a resolved id never resolves again


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=2, max_size=6))
def test_duplicate_names_never_validate(route_names):
    route_names = route_names + [route_names[0]]
    with pytest.raises(ValueError):
        check_routes(tuple(ModelRoute(name=n, models=("org/m",)) for n in route_names))
