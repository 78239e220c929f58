"""Routes: a request's `model` may name an ordered list of models, or a capability of the cards.

Pure: (state, routes, requested, may_use) -> the model id that will serve, or an error. The API
node resolves once, before anything is sent, so the command, the limits, the allow-lists and the
answer's `model` field all see the concrete model id.

Order: an explicit route's models in the order configured; `capability:X` takes the models of
the running instances whose card has capability X (or the task it implies: `text` for text
generation, `embedding` for embeddings), sorted by id. Either way the first model with a ready
instance serves, else the first with any instance (it is loading: the request waits for it).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skulk.config.routes import CAPABILITY_PREFIX, ModelRoute, check_routes
from skulk.errors import NotFound, SkulkError
from skulk.master.serving import instance_is_ready
from skulk.types.models import ModelCard
from skulk.types.state import State

TASK_CAPABILITIES = {"TextGeneration": "text", "TextEmbedding": "embedding"}


class RouteForbidden(SkulkError):
    status = 403
    code = "model_not_allowed"


@dataclass(frozen=True)
class RouteView:
    """One route as /v1/routes and /v1/models show it."""

    name: str
    kind: str  # "route" (configured) | "capability" (from the cards)
    models: tuple[str, ...]
    served_by: str | None  # the model a request would go to now, None when none can serve


def card_capabilities(card: ModelCard) -> set[str]:
    return set(card.capabilities) | {TASK_CAPABILITIES[t] for t in card.tasks if t in TASK_CAPABILITIES}


def _running_cards(state: State) -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    for inst in state.instances.values():
        shards = inst.shard_assignments.runner_to_shard
        if shards:
            cards.setdefault(inst.shard_assignments.model_id, next(iter(shards.values())).model_card)
    return cards


def _model_status(state: State) -> dict[str, bool]:
    """Model id -> whether any of its instances is ready (present: it has an instance)."""
    status: dict[str, bool] = {}
    for iid, inst in state.instances.items():
        model = inst.shard_assignments.model_id
        status[model] = status.get(model, False) or instance_is_ready(state, iid)
    return status


def route_models(state: State, routes: Sequence[ModelRoute], name: str) -> tuple[str, ...] | None:
    """The ordered candidates of a route or capability name; None when `name` is neither."""
    if name.startswith(CAPABILITY_PREFIX):
        capability = name[len(CAPABILITY_PREFIX):]
        return tuple(sorted(m for m, card in _running_cards(state).items() if capability in card_capabilities(card)))
    for route in routes:
        if route.name == name:
            return tuple(route.models)
    return None


def pick(candidates: Iterable[str], status: dict[str, bool]) -> str | None:
    """The first candidate with a ready instance, else the first with any instance."""
    present = [m for m in candidates if m in status]
    return next((m for m in present if status[m]), present[0] if present else None)


def resolve_model(state: State, routes: Sequence[ModelRoute], requested: str,
                  may_use: Callable[[str], bool] | None = None) -> str:
    """The model id that serves `requested`: itself when it names no route. Models the caller
    may not use are skipped; a route none of whose models it may use is 403."""
    candidates = route_models(state, routes, requested)
    if candidates is None:
        return requested
    allowed = [m for m in candidates if may_use is None or may_use(m)]
    if candidates and not allowed:
        raise RouteForbidden(f"this API key may use none of the models of route {requested!r}", param="model")
    chosen = pick(allowed, _model_status(state))
    if chosen is None:
        listed = ", ".join(allowed[:8]) or "none running"
        raise NotFound(f"No instance found for any model of route {requested!r} (models: {listed})",
                       code="model_not_found", param="model")
    return chosen


def route_views(state: State, routes: Sequence[ModelRoute], catalog: Iterable[ModelCard] = ()) -> list[RouteView]:
    """Every configured route, then one capability route per capability of a running or known card."""
    status = _model_status(state)
    views = [RouteView(r.name, "route", tuple(r.models), pick(r.models, status)) for r in routes]
    capabilities: set[str] = set()
    for card in [*catalog, *_running_cards(state).values()]:
        capabilities |= card_capabilities(card)
    for capability in sorted(capabilities):
        name = CAPABILITY_PREFIX + capability
        models = route_models(state, routes, name) or ()
        views.append(RouteView(name, "capability", models, pick(models, status)))
    return views


_parsed: list[Any] = [None, ()]  # the last config mapping seen and its routes: parsed once, not per request


def routes_from_config(values: Any) -> tuple[ModelRoute, ...]:
    """The `routes` of a cluster-config mapping; () when absent or invalid (never fatal here)."""
    if _parsed[0] is values:
        return _parsed[1]
    raw = values.get("routes") if isinstance(values, dict) else None
    routes: tuple[ModelRoute, ...] = ()
    if isinstance(raw, list):
        try:
            routes = validated_routes(raw)
        except (ValueError, TypeError):
            routes = ()
    _parsed[:] = [values, routes]  # holding `values` keeps its identity from being reused
    return routes


def validated_routes(raw: Any) -> tuple[ModelRoute, ...]:
    """Parse and check a list of routes as the settings model does; ValueError when wrong."""
    return check_routes(tuple(ModelRoute.model_validate(r) for r in raw))


def is_route_name(name: str, routes: Sequence[ModelRoute]) -> bool:
    return name.startswith(CAPABILITY_PREFIX) or any(r.name == name for r in routes)


def routes_of(port: Any) -> tuple[ModelRoute, ...]:
    """The cluster's routes: the replicated config once someone set one (it wins on every node,
    as ConfigSync makes it win in each skulk.yaml), else this node's own settings."""
    config = port.state.cluster_config
    if config is not None:
        return routes_from_config(config)
    return tuple(getattr(getattr(port, "settings", None), "routes", None) or ())
