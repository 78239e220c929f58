"""Before a runner starts: stage (store) and resolve its model directory, off the event loop."""

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import trio

from skulk.errors import SkulkError
from skulk.models import ModelCatalog
from skulk.runner.launch import resolve_runner_model
from skulk.types.shards import ShardMetadata

log = logging.getLogger(__name__)


async def prepare_runner_model(
    shard: ShardMetadata, model_id: str, *, prepare: Callable[[str], Awaitable[None]] | None,
    models_dir: Path, extra_dirs: Sequence[Path], offline: bool, catalog: ModelCatalog | None,
    hf_token: str | None,
) -> tuple[Path | None, str | None]:
    """(model directory, None) or (None, why the runner cannot start); never raises but cancellation."""
    try:
        if prepare is not None:
            await prepare(model_id)
        # Abandoned on cancel: a download must not hold up a shutdown.
        resolved = await trio.to_thread.run_sync(
            partial(resolve_runner_model, hf_token=hf_token), shard, models_dir, extra_dirs, offline, catalog,
            abandon_on_cancel=True)
        return resolved, None
    except SkulkError as exc:
        return None, exc.message
    except Exception as exc:  # a converter or disk error: the runner fails, the node lives on
        log.exception("resolving model %s failed", model_id)
        return None, f"model {model_id!r}: {type(exc).__name__}: {exc}"
