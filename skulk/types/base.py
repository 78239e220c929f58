"""Frozen pydantic bases and Skulk's externally tagged unions: {"ClassName": {...}}."""

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_serializer, model_validator
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Every model that crosses a process boundary: camelCase, frozen, no unknown fields."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )


class TaggedModel(WireModel):
    """A union member: serialises as {"ClassName": {fields}} and accepts that form back."""

    @model_serializer(mode="wrap")
    def _wrap_tag(self, handler: Any) -> dict[str, Any]:
        return {type(self).__name__: handler(self)}

    @model_validator(mode="before")
    @classmethod
    def _unwrap_tag(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1:
            (key, inner), = data.items()
            if key == cls.__name__ and isinstance(inner, dict):
                return inner
        return data


def _tag_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else None
    return type(value).__name__


def tagged_union(*members: type[TaggedModel]) -> Any:
    """An Annotated union that dispatches on the outer tag (or the instance's class)."""
    tagged = tuple(Annotated[m, Tag(m.__name__)] for m in members)
    return Annotated[Union[tagged], Discriminator(_tag_of)]  # type: ignore[valid-type]
