"""Identifiers and small value types shared by everything."""

import re
from typing import Annotated
from uuid import uuid4

from pydantic import AfterValidator, Field

from skulk.errors import BadRequest
from skulk.types.base import WireModel

NodeId = str  # the libp2p peer id, base58 "12D3KooW..."
SystemId = str
CommandId = str
TaskId = str
InstanceId = str
RunnerId = str
EventId = str
ModelId = str  # Hugging Face repo id "org/name"


def new_id() -> str:
    return str(uuid4())


MAX_MODEL_ID_LEN = 160  # a hub id is at most ~136; room for temp and lock names under NAME_MAX
_ID_PART = re.compile(r"[A-Za-z0-9_.-]+")  # the hub's alphabet; no separators, spaces or controls


class InvalidModelId(BadRequest, ValueError):
    """A model id that must not become a path. A ValueError for pydantic, a 400 for the API."""

    def __init__(self, message: str, *, param: str = "model_id"):
        super().__init__(message, param=param)


def _id_problem(model_id: object) -> str | None:
    if not isinstance(model_id, str):
        return "is not a string"
    if not model_id or len(model_id) > MAX_MODEL_ID_LEN:
        return f"must be 1 to {MAX_MODEL_ID_LEN} characters"
    parts = model_id.split("/")
    if len(parts) > 2:
        return "has more than one '/' (expected org/name)"
    for part in parts:
        if not part:
            return "has an empty part"
        if not _ID_PART.fullmatch(part):
            return "may only hold letters, digits, '.', '_', '-' and one '/'"
        if part.startswith("."):
            return "has a part that starts with '.'"
    # The dir name joins the parts with "--" and splits at the first one, so the org (or a
    # single-part id) must not hold "--", nor an org end in "-": "a-/b" would read back as "a/-b".
    if "--" in parts[0] or (len(parts) == 2 and parts[0].endswith("-")):
        return "has an org with '--' or a trailing '-' (it would not read back from its directory name)"
    return None


def validate_model_id(model_id: str, *, param: str = "model_id") -> str:
    """`model_id` if it is safe to turn into one path component; else InvalidModelId naming why."""
    if (problem := _id_problem(model_id)) is not None:
        raise InvalidModelId(f"model id {str(model_id)[:MAX_MODEL_ID_LEN]!r} {problem}", param=param)
    return model_id


def is_valid_model_id(model_id: object) -> bool:
    return _id_problem(model_id) is None


def _refuse_as_bad_request(model_id: str) -> str:
    try:
        return validate_model_id(model_id)
    except InvalidModelId as exc:
        # Not a ValueError, so pydantic lets it through and the API answers 400, not 422.
        raise BadRequest(exc.message, param="model_id") from None


# For request models: a model id that will become a path, refused with a 400 otherwise.
SafeModelId = Annotated[str, AfterValidator(_refuse_as_bad_request)]


def model_dir_name(model_id: ModelId) -> str:
    """On-disk form of a model id: "org/name" -> "org--name". Raises InvalidModelId for an id
    that could escape its directory (see validate_model_id)."""
    return validate_model_id(model_id).replace("/", "--")


def model_id_of_dir_name(name: str) -> str | None:
    """The model id a directory name stands for ("org--name" -> "org/name"), or None."""
    model_id = name.replace("--", "/", 1)
    return model_id if is_valid_model_id(model_id) and model_dir_name(model_id) == name else None


class SessionId(WireModel):
    """One master's reign: who orders the log and at which election clock."""

    master_node_id: NodeId
    election_clock: int = Field(ge=0)


class Memory(WireModel):
    in_bytes: int

    @classmethod
    def from_gb(cls, gb: float) -> "Memory":
        return cls(in_bytes=int(gb * 1024**3))

    @property
    def in_gb(self) -> float:
        return self.in_bytes / 1024**3
