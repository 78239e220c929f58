"""ConfigSection: the base of every settings model (its own module so section modules can share it)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class ConfigSection(BaseModel):
    """Base of every settings model: immutable, and unknown keys are errors, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # Lax mode would read `api_port: true` as 1; a boolean there is always a mistake.
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and annotation in (int, float, int | None, float | None):
            raise ValueError("Input should be a number, not a boolean")
        return value
