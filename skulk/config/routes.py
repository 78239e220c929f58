"""The `routes` key: named, ordered lists of models a request may name instead of one model id."""

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CAPABILITY_PREFIX = "capability:"  # implicit routes from the model cards: capability:text, ...
ROUTE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # no "/": a route never shadows a repo id
MAX_ROUTES = 64
MAX_ROUTE_MODELS = 32


class ModelRoute(_Section):
    name: str = Field(pattern=ROUTE_NAME_PATTERN, description="What a request names as its model.")
    models: tuple[str, ...] = Field(min_length=1, max_length=MAX_ROUTE_MODELS,
                                    description="Model ids in order of preference.")


def check_routes(routes: tuple[ModelRoute, ...]) -> tuple[ModelRoute, ...]:
    """Names unique and not reserved; a route's models are concrete ids, never other routes."""
    if len(routes) > MAX_ROUTES:
        raise ValueError(f"at most {MAX_ROUTES} routes are accepted, got {len(routes)}")
    names = [r.name for r in routes]
    for route in routes:
        if route.name.startswith(CAPABILITY_PREFIX):
            raise ValueError(f"route name {route.name!r}: the {CAPABILITY_PREFIX!r} prefix is reserved")
        if names.count(route.name) > 1:
            raise ValueError(f"route name {route.name!r} is used more than once")
        for model in route.models:
            if model in names or model.startswith(CAPABILITY_PREFIX) or not model.strip():
                raise ValueError(f"route {route.name!r}: {model!r} must be a model id, not a route")
    return routes
