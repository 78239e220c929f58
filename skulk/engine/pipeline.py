"""Pipeline parallelism over mlx-lm's model classes: keep a contiguous layer range per rank.

The model's own forward still runs on every rank (embedding, masks, architecture quirks);
only its layer list shrinks to the owned range. The first owned layer replaces its input with
the hidden state received from rank r-1, the last owned layer sends its output to rank r+1.
MLX is lazy, so a rank that is not last never evaluates the final norm and head: it evaluates
only what it sends. Limits: the layer list must be a plain list reachable at one of
LAYER_LIST_PATHS, and each layer must take the hidden state first and return one array.
"""

from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn

LAYER_LIST_PATHS = (
    "model.layers",
    "language_model.model.layers",
    "model.language_model.layers",
    "layers",
)


@dataclass
class PipelineStage:
    """This rank's place in the pipeline; `forward` is what the engine calls instead of model()."""

    rank: int
    world_size: int
    start_layer: int
    end_layer: int
    group: Any = None
    pending_sends: list[mx.array] = field(default_factory=list)

    @property
    def is_last(self) -> bool:
        return self.rank == self.world_size - 1

    def forward(self, model: nn.Module, inputs: mx.array, cache: list[Any]) -> mx.array | None:
        """Logits on the last rank; None elsewhere, after the hidden state has been sent on."""
        out = model(inputs, cache=cache)
        if self.is_last:
            return out
        sends, self.pending_sends = self.pending_sends, []
        mx.eval(sends, [c.state for c in cache])
        return None


def find_layer_list(model: nn.Module) -> tuple[nn.Module, str, str]:
    """(holder module, attribute, dotted path) of the transformer block list."""
    for path in LAYER_LIST_PATHS:
        *parents, attr = path.split(".")
        holder: Any = model
        for name in parents:
            holder = holder.get(name) if isinstance(holder, nn.Module) else None
        # dict membership, not getattr: llama's Model.layers is a read-only property.
        if isinstance(holder, nn.Module) and isinstance(holder.get(attr), list):
            return holder, attr, path
    raise ValueError(f"cannot find the layer list of {type(model).__name__} at {LAYER_LIST_PATHS}")


def _kind(layer: nn.Module) -> tuple:
    """What distinguishes layer kinds (sliding vs full attention, linear vs softmax...)."""
    flags = sorted((k, v) for k, v in vars(layer).items() if isinstance(v, (bool, str)))
    return (type(layer), tuple(flags))


def keep_layer_range(model: nn.Module, start: int, end: int) -> list[nn.Module]:
    """Drop layers outside [start, end) so their (lazy) weights are never loaded."""
    holder, attr, _ = find_layer_list(model)
    layers = holder[attr]
    if not 0 <= start < end <= len(layers):
        raise ValueError(f"layer range [{start}, {end}) outside the model's {len(layers)} layers")
    kept = layers[start:end]
    # Forwards pick a mask from cache[self.<kind>_idx]; point those at a kept layer of the same kind.
    for name, value in list(vars(holder).items()):
        if name.endswith("_idx") and isinstance(value, int) and 0 <= value < len(layers):
            kind = _kind(layers[value])
            same = [i for i, layer in enumerate(kept) if _kind(layer) == kind]
            setattr(holder, name, same[0] if same else 0)
    if isinstance(holder.get("layer_types"), list) and len(holder["layer_types"]) == len(layers):
        holder["layer_types"] = holder["layer_types"][start:end]
    holder[attr] = kept
    return kept


def _retype(layer: nn.Module, prefix: str, call: Any) -> None:
    """Give one layer instance its own __call__ (Python looks __call__ up on the type)."""
    base = type(layer)
    layer.__class__ = type(f"{prefix}{base.__name__}", (base,), {"__call__": call})


def wire_stage(model: nn.Module, stage: PipelineStage) -> None:
    """Make the kept layers receive from rank-1 and send to rank+1."""
    holder, attr, _ = find_layer_list(model)
    layers = holder[attr]
    group = stage.group
    if stage.rank > 0:
        first = layers[0]
        base_call = type(first).__call__
        src = stage.rank - 1

        def recv_call(self, x, *args, **kwargs):
            x = mx.distributed.recv_like(x, src, group=group)
            return base_call(self, x, *args, **kwargs)

        _retype(first, "Recv", recv_call)
    if not stage.is_last:
        last = layers[-1]
        base_call = type(last).__call__
        dst = stage.rank + 1

        def send_call(self, x, *args, **kwargs):
            out = base_call(self, x, *args, **kwargs)
            if not isinstance(out, mx.array):
                raise TypeError(f"{type(self).__name__} returns {type(out).__name__}, not one array")
            sent = mx.distributed.send(out, dst, group=group)
            stage.pending_sends.append(sent)
            return sent

        _retype(last, "Send", send_call)
