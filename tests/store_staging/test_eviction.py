"""The eviction decision, a pure function: inventory + in-use set + budget -> victims."""

from skulk.store.eviction import GB, StagedModel, choose_evictions, choose_purge, keep_bytes


def model(name: str, gb: float, last_used: float) -> StagedModel:
    return StagedModel(model_id=f"org/{name}", directory=f"/s/org--{name}", size_bytes=int(gb * GB),
                       last_used=last_used)


A, B, C, D = model("a", 4, 400), model("b", 4, 300), model("c", 4, 200), model("d", 1, 100)
ALL = [C, A, D, B]  # scan order does not matter


def ids(models: list[StagedModel]) -> list[str]:
    return [m.model_id for m in models]


def test_idle_models_are_kept_newest_first_within_the_budget():
    assert ids(choose_evictions(ALL, set(), keep_bytes(8))) == ["org/d", "org/c"]


def test_once_one_model_does_not_fit_every_older_one_goes_too():
    # d (1 GB) would fit after a and b, but it is older than c, which did not.
    assert ids(choose_evictions(ALL, set(), keep_bytes(9))) == ["org/d", "org/c"]
    assert ids(choose_evictions(ALL, set(), keep_bytes(13))) == []


def test_budget_zero_evicts_every_idle_model_oldest_first():
    assert ids(choose_evictions(ALL, set(), 0)) == ["org/d", "org/c", "org/b", "org/a"]


def test_a_model_in_use_is_never_evicted_and_does_not_count_against_the_budget():
    victims = choose_evictions(ALL, {"org/a", "org/d"}, keep_bytes(4))
    assert ids(victims) == ["org/c"]
    assert ids(choose_evictions(ALL, {m.model_id for m in ALL}, 0)) == []


def test_purge_ignores_the_budget_but_never_takes_a_model_in_use():
    assert ids(choose_purge(ALL, {"org/b"})) == ["org/c", "org/a", "org/d"]
    assert ids(choose_purge(ALL, {"org/b"}, "org/c")) == ["org/c"]
    assert ids(choose_purge(ALL, {"org/b"}, "org/b")) == []


def test_nothing_staged_nothing_evicted():
    assert choose_evictions([], set(), 0) == [] and choose_purge([], set()) == []
