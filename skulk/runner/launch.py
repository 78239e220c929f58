"""Everything a runner process is started with, and how its end is explained: deadlines from
the environment, the model directory, one rank's ring entries, argv, env, failure messages.
All synchronous; only resolve_model_dir touches the disk (or the network, when online)."""

import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import skulk
from skulk.engine.distributed import rank_env
from skulk.errors import ConfigError, NotFound, SkulkError
from skulk.models import ModelCatalog, ModelDirInvalid, ensure_model_dir, validate_model_dir
from skulk.models.packages import find_package_file
from skulk.types.ids import model_dir_name
from skulk.types.instances import LLAMA_CPP_BACKEND, LlamaRpcInstance, MlxJacclInstance, MlxRingInstance
from skulk.types.models import ModelCard
from skulk.types.shards import ShardMetadata

WORKER_MODULE = "skulk.engine.worker_main"
EXIT_PARENT_GONE, EXIT_RING_LOST, EXIT_CONNECT_TIMEOUT = 1, 3, 4  # worker_main's exit codes
RING_LOST = "ring peer lost (another rank died)"
AnyInstance = MlxRingInstance | MlxJacclInstance | LlamaRpcInstance
# A runner never gets the node's credentials: it downloads nothing (its model directory is
# resolved, with the configured hf_token, before it starts). Matched by "_"-separated word.
_SECRET_WORDS = frozenset({"TOKEN", "SECRET", "KEY", "APIKEY", "PASSWORD", "PASSWD", "CREDENTIALS"})
_SECRET_PREFIXES = ("SKULK_AUTH__", "SKULK_CLUSTER__")


@dataclass(frozen=True)
class Deadlines:
    connect_s: float = 120.0
    load_s: float = 300.0
    warmup_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Deadlines":
        return cls(
            connect_s=_seconds(env, "SKULK_GROUP_CONNECT_DEADLINE_SECONDS", cls.connect_s),
            load_s=_seconds(env, "SKULK_MODEL_LOAD_TIMEOUT", cls.load_s),
            warmup_s=_seconds(env, "SKULK_WARMUP_DEADLINE_SECONDS", cls.warmup_s),
        )

    def connect_exceeded(self) -> str:
        return f"group connect deadline ({self.connect_s:g} s) exceeded"

    def load_exceeded(self) -> str:
        return f"model load deadline ({self.load_s:g} s) exceeded"

    def warmup_exceeded(self) -> str:
        return f"warmup deadline ({self.warmup_s:g} s) exceeded"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds", param=name) from None
    if not value > 0:  # also refuses nan
        raise ConfigError(f"{name}={raw!r} must be positive", param=name)
    return value


def resolve_model_dir(model_id: str, models_dir: Path, extra_dirs: Sequence[Path], offline: bool,
                      catalog: ModelCatalog | None = None, *, hf_token: str | None = None,
                      endpoint: str | None = None) -> Path:
    """The model's directory, found or produced (a hub download uses `hf_token`, for gated models),
    and loadable; else a SkulkError naming the problem. Blocking: run it in a thread."""
    try:
        path = ensure_model_dir(model_id, models_dir, extra_dirs, catalog, offline,
                                endpoint=endpoint, token=hf_token)
    except NotFound:
        # A directory that is there but unusable (no config.json): say what is wrong with it.
        roots = (Path(models_dir), *map(Path, extra_dirs))
        path = next((r / model_dir_name(model_id) for r in roots if (r / model_dir_name(model_id)).is_dir()), None)
        if path is None:
            raise
    if problem := validate_model_dir(path):
        raise ModelDirInvalid(f"model directory {problem}")
    return path


def resolve_gguf_file(card: ModelCard, models_dir: Path, extra_dirs: Sequence[Path]) -> Path:
    """The card's GGUF file, from its source package or `<root>/<org>--<name>/<file>`; else a
    NotFound naming the file and where it was looked for. llama.cpp loads it as it is."""
    name = card.gguf_file
    if not name or Path(name).name != name:
        raise NotFound(f"model {card.model_id!r} names no usable GGUF file ({name!r})", code="model_not_found")
    if card.source_package and (found := find_package_file(card.source_package, name)) is not None:
        return found
    roots = (Path(models_dir).expanduser(), *(Path(p).expanduser() for p in extra_dirs))
    candidates = [r / model_dir_name(card.model_id) / name for r in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    package = f"package {card.source_package!r}, " if card.source_package else ""
    raise NotFound(f"GGUF file {name} of model {card.model_id!r} is not on this node (searched "
                   f"{package}{', '.join(map(str, candidates))})", param="model_id", code="model_not_found")


def resolve_runner_model(shard: ShardMetadata, models_dir: Path, extra_dirs: Sequence[Path], offline: bool,
                         catalog: ModelCatalog | None = None, **hub: Any) -> Path:
    """What the shard's engine loads: a GGUF file for llama.cpp, a model directory for MLX
    (`hub`: resolve_model_dir's download options). Blocking."""
    if shard.resolved_backend == LLAMA_CPP_BACKEND:
        return resolve_gguf_file(shard.model_card, models_dir, extra_dirs)
    return resolve_model_dir(shard.model_card.model_id, models_dir, extra_dirs, offline, catalog, **hub)


def own_shard(instance: AnyInstance, runner_id: str) -> ShardMetadata:
    shards = instance.shard_assignments.runner_to_shard
    if runner_id not in shards:
        raise SkulkError(f"runner {runner_id} has no shard in instance", code="runner_not_in_instance")
    return shards[runner_id]


def ring_entries(instance: AnyInstance, node_id: str, world_size: int) -> list[str]:
    """This rank's hostfile entries ("ip:port" per rank; itself on 0.0.0.0), or [] for one rank."""
    if world_size == 1:
        return []
    if not isinstance(instance, MlxRingInstance):
        kind = type(instance).__name__
        raise SkulkError(f"{kind} is not supported by the runner (MlxRing only)", code="runner_unsupported")
    hosts = instance.hosts_by_node.get(node_id)
    if hosts is None or len(hosts) != world_size:
        got = "none" if hosts is None else str(len(hosts))
        raise SkulkError(f"instance {instance.instance_id}: node {node_id} has {got} ring hosts, "
                         f"expected {world_size}", code="runner_bad_hosts")
    return [f"{h.ip}:{h.port}" for h in hosts]


def worker_argv(model_dir: Path, shard: ShardMetadata, deadlines: Deadlines, *,
                context_limit: int | None, cpus: Sequence[int] | None) -> list[str]:
    if shard.resolved_backend == LLAMA_CPP_BACKEND:
        argv = [sys.executable, "-m", WORKER_MODULE, "--engine", "llama_cpp", "--gguf", str(model_dir)]
    else:
        argv = [sys.executable, "-m", WORKER_MODULE, "--model-dir", str(model_dir),
                "--connect-deadline", f"{deadlines.connect_s:g}"]
    if shard.world_size > 1:
        argv += ["--shard-json", shard.model_dump_json(by_alias=True)]
    if context_limit:
        argv += ["--context-limit", str(context_limit)]
    if cpus:
        argv += ["--cpus", ",".join(map(str, cpus))]
    return argv


def worker_env(base: Mapping[str, str], hostfile: Path | None, rank: int, world_size: int,
               cpus: Sequence[int] | None, cpu_count: int) -> dict[str, str]:
    """rank_env plus a PYTHONPATH that finds this very skulk (the child runs `-m`), over `base`
    without its secrets (see is_secret_env_name)."""
    clean = {name: value for name, value in base.items() if not is_secret_env_name(name)}
    env = rank_env(hostfile, rank, world_size, threads=len(cpus) if cpus else cpu_count, base=clean)
    root = str(Path(skulk.__file__).resolve().parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(":") if p]
    if root not in paths:
        env["PYTHONPATH"] = ":".join([root, *paths])
    return env


MOCK_DEVICE_ENV = "SKULK_MOCK_DEVICE"  # set for a runner "on" a devices.mock GPU: llama_load keeps it on CPU


def device_launch(instance: AnyInstance) -> tuple[list[str], dict[str, str]]:
    """A LlamaRpc runner's GPU layers (argv) and its device pin (env); nothing for other instances.

    All layers is passed as -1 (llama.cpp then offloads the output layer too)."""
    offload = instance.offload if isinstance(instance, LlamaRpcInstance) else None
    if offload is None:
        return [], {}
    layers = -1 if offload.n_gpu_layers and offload.n_gpu_layers == offload.total_layers else offload.n_gpu_layers
    env = offload.pin_env() | ({MOCK_DEVICE_ENV: "1"} if offload.mock else {})
    return ["--n-gpu-layers", str(layers)], env


def is_secret_env_name(name: str) -> bool:
    """HF_TOKEN, FOO_API_KEY, AWS_SECRET_ACCESS_KEY, SKULK_CLUSTER__SECRET, SKULK_AUTH__*, ..."""
    upper = name.upper()
    return upper.startswith(_SECRET_PREFIXES) or not _SECRET_WORDS.isdisjoint(upper.split("_"))


def fatal_reason(code: str | None, message: str, deadlines: Deadlines) -> str:
    """The failure message for a `fatal` frame from the runner."""
    if code == "ring_peer_lost":
        return f"{RING_LOST}: {message.removeprefix('ring peer lost: ')}"
    if code == "group_connect_timeout":
        return f"{deadlines.connect_exceeded()}: {message}"
    return f"runner failed ({code}): {message}"


def exit_reason(returncode: int, deadlines: Deadlines, last_stderr: str | None) -> str:
    """The failure message for a runner that exited without a fatal frame."""
    if returncode == EXIT_RING_LOST:
        return RING_LOST
    if returncode == EXIT_CONNECT_TIMEOUT:
        return deadlines.connect_exceeded()
    reason = f"runner exited with code {returncode}"
    if returncode < 0:
        try:
            return f"{reason} ({signal.Signals(-returncode).name})"
        except ValueError:
            return reason
    if returncode == EXIT_PARENT_GONE:
        reason += " (parent watchdog, or the MLX ring init hung)"
    elif returncode == 0:
        reason += " before it was asked to stop"
    return f"{reason}: {last_stderr}" if last_stderr else reason
