"""Ollama request shapes, their translation to task params, and the model descriptions
(/api/tags, /api/show, /api/ps) built from model cards."""

import hashlib
import math
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from skulk.errors import BadRequest
from skulk.types.models import ModelCard
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

ROLES = {"system", "user", "assistant", "tool", "developer"}


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None


class _OllamaGenerationBase(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    stream: bool = True  # Ollama streams unless told not to
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    format: Any = None
    keep_alive: Any = None


class OllamaChatRequest(_OllamaGenerationBase):
    messages: list[OllamaMessage] = []
    tools: list[dict[str, Any]] | None = None


class OllamaGenerateRequest(_OllamaGenerationBase):
    prompt: str = ""
    system: str | None = None
    suffix: str | None = None
    raw: bool = False


class OllamaEmbedRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] = ""
    prompt: str | None = None  # the legacy /api/embeddings field
    truncate: bool = True
    dimensions: int | None = None


def _positive(value: Any) -> int | None:
    """Ollama uses -1/-2/0 for "no limit"; only a positive count limits anything."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # json.loads reads Infinity and NaN; int() of them raises
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _think(think: bool | str | None) -> tuple[bool | None, str | None]:
    if isinstance(think, str):  # "low" / "medium" / "high"
        return True, think
    return think, None


def sampling_from_options(options: dict[str, Any] | None, think: bool | str | None) -> dict[str, Any]:
    o = options or {}
    stop = o.get("stop")
    enable_thinking, effort = _think(think)
    return {
        "max_output_tokens": _positive(o.get("num_predict")), "temperature": o.get("temperature"),
        "top_p": o.get("top_p"), "top_k": o.get("top_k"), "min_p": o.get("min_p"), "seed": o.get("seed"),
        "stop": [stop] if isinstance(stop, str) else stop, "repetition_penalty": o.get("repeat_penalty"),
        "repetition_context_size": _positive(o.get("repeat_last_n")),
        "enable_thinking": enable_thinking, "reasoning_effort": effort,
    }


def _message(m: OllamaMessage) -> ChatMessage:
    if m.role not in ROLES:
        raise BadRequest(f"invalid role {m.role!r}: expected one of {', '.join(sorted(ROLES))}", param="messages")
    return ChatMessage(role=m.role, content=m.content or "")  # type: ignore[arg-type]


def chat_params(req: OllamaChatRequest) -> TextGenerationTaskParams:
    return TextGenerationTaskParams(model=req.model, input=[_message(m) for m in req.messages], stream=req.stream,
                                    tools=req.tools, **sampling_from_options(req.options, req.think))


def generate_params(req: OllamaGenerateRequest) -> TextGenerationTaskParams:
    messages = [ChatMessage(role="system", content=req.system)] if req.system else []
    messages.append(ChatMessage(role="user", content=req.prompt))
    return TextGenerationTaskParams(model=req.model, input=messages, stream=req.stream,
                                    **sampling_from_options(req.options, req.think))


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def digest(model_id: str) -> str:
    """A stable stand-in for Ollama's blob digest (skulk models are directories, not blobs)."""
    return hashlib.sha256(model_id.encode()).hexdigest()


def details(card: ModelCard | None) -> dict[str, Any]:
    family = card.family if card else ""
    return {"parent_model": "", "format": "safetensors", "family": family, "families": [family] if family else None,
            "parameter_size": "", "quantization_level": card.quantization if card else ""}


def tag_entry(model_id: str, card: ModelCard | None) -> dict[str, Any]:
    return {"name": model_id, "model": model_id, "modified_at": now_rfc3339(),
            "size": card.storage_size.in_bytes if card else 0, "digest": digest(model_id), "details": details(card)}


def ps_entry(model_id: str, card: ModelCard | None) -> dict[str, Any]:
    size = card.storage_size.in_bytes if card else 0
    return {**tag_entry(model_id, card), "expires_at": "2099-01-01T00:00:00Z", "size_vram": size,
            "context_length": card.context_length if card else 0}


def capabilities(card: ModelCard) -> list[str]:
    if "TextEmbedding" in card.tasks:
        return ["embedding"]
    extra = [c for c in ("thinking", "tools", "vision") if c in card.capabilities]
    return ["completion", *extra]


def show_body(card: ModelCard) -> dict[str, Any]:
    family = card.family or "unknown"
    info = {"general.architecture": family, "general.basename": card.base_model or card.model_id,
            f"{family}.context_length": card.context_length, f"{family}.embedding_length": card.hidden_size,
            f"{family}.block_count": card.n_layers}
    return {"modelfile": f"FROM {card.model_id}\n", "template": "{{ .Prompt }}", "parameters": "",
            "license": "", "details": details(card), "model_info": info, "capabilities": capabilities(card),
            "modified_at": now_rfc3339()}
