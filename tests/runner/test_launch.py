"""Pure pieces of the supervisor: deadlines, ring entries, argv/env, failure messages, CPU plans, frames."""

import signal
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

import skulk

from skulk.errors import ConfigError, SkulkError
from skulk.runner import Deadlines, cpus_for_rank, split_cpus
from skulk.runner.frames import FrameError, FrameReader, encode_frame
from skulk.runner.launch import exit_reason, fatal_reason, own_shard, ring_entries, worker_argv, worker_env

from .harness import ring_instance


def test_deadlines_from_env_with_defaults_and_errors():
    assert Deadlines.from_env({}) == Deadlines(120.0, 300.0, 300.0)
    d = Deadlines.from_env({"SKULK_GROUP_CONNECT_DEADLINE_SECONDS": "2", "SKULK_MODEL_LOAD_TIMEOUT": "9.5",
                            "SKULK_WARMUP_DEADLINE_SECONDS": " "})
    assert d == Deadlines(2.0, 9.5, 300.0)
    assert d.connect_exceeded() == "group connect deadline (2 s) exceeded"
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ConfigError) as info:
            Deadlines.from_env({"SKULK_WARMUP_DEADLINE_SECONDS": bad})
        assert info.value.param == "SKULK_WARMUP_DEADLINE_SECONDS"


def test_ring_entries_are_this_ranks_view_of_hosts_by_node():
    inst = ring_instance(2)
    p0, p1 = (h.port for h in inst.hosts_by_node["node-1"])
    assert ring_entries(inst, "node-0", 2) == [f"0.0.0.0:{p0}", f"127.0.0.1:{p1}"]
    assert ring_entries(inst, "node-1", 2) == [f"127.0.0.1:{p0}", f"0.0.0.0:{p1}"]
    assert ring_entries(ring_instance(1), "node-0", 1) == []
    with pytest.raises(SkulkError, match="node-9 has none"):
        ring_entries(inst, "node-9", 2)
    with pytest.raises(SkulkError, match="no shard"):
        own_shard(inst, "runner-7")


def test_argv_and_env_carry_shard_deadline_cpus_and_blas(tmp_path):
    inst = ring_instance(2)
    shard = own_shard(inst, "runner-1")
    argv = worker_argv(tmp_path, shard, Deadlines(connect_s=7), context_limit=128, cpus=[1])
    assert argv[:3] == [sys.executable, "-m", "skulk.engine.worker_main"]
    assert argv[argv.index("--connect-deadline") + 1] == "7"
    assert '"PipelineShardMetadata"' in argv[argv.index("--shard-json") + 1]
    assert argv[argv.index("--context-limit") + 1] == "128" and argv[-2:] == ["--cpus", "1"]
    env = worker_env({"PATH": "/bin", "MLX_RANK": "5"}, tmp_path / "h.json", 1, 2, [1], 8)
    assert (env["MLX_RANK"], env["MLX_HOSTFILE"], env["OPENBLAS_NUM_THREADS"]) == ("1", str(tmp_path / "h.json"), "1")
    assert env["PYTHONPATH"].split(":")[0] == str(Path(skulk.__file__).resolve().parents[1])
    solo = worker_env({"MLX_RANK": "5", "MLX_HOSTFILE": "x"}, None, 0, 1, None, 8)
    assert "MLX_RANK" not in solo and "MLX_HOSTFILE" not in solo and solo["OPENBLAS_NUM_THREADS"] == "8"
    assert "--shard-json" not in worker_argv(tmp_path, own_shard(ring_instance(1), "runner-0"), Deadlines(),
                                             context_limit=None, cpus=None)


def test_failure_messages_name_the_cause():
    d = Deadlines(connect_s=2)
    assert fatal_reason("ring_peer_lost", "boom", d) == "ring peer lost (another rank died): boom"
    assert fatal_reason("ring_peer_lost", "ring peer lost: x", d) == "ring peer lost (another rank died): x"
    assert fatal_reason("group_connect_timeout", "rank 0: x", d).startswith("group connect deadline (2 s) exceeded")
    assert fatal_reason("ValueError", "bad", d) == "runner failed (ValueError): bad"
    assert exit_reason(-signal.SIGKILL, d, None) == "runner exited with code -9 (SIGKILL)"
    assert exit_reason(3, d, None) == "ring peer lost (another rank died)"
    assert exit_reason(4, d, None) == "group connect deadline (2 s) exceeded"
    assert exit_reason(2, d, "MemoryError") == "runner exited with code 2: MemoryError"
    assert "before it was asked to stop" in exit_reason(0, d, None)


def test_cpu_split_gives_own_cores_or_shares():
    assert split_cpus(2, [0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert split_cpus(3, [0, 1]) == [[0], [1], [0]]  # fewer cores than ranks: share, never fail
    assert split_cpus(2, []) == [[], []] and split_cpus(0) == []
    assert cpus_for_rank(1, 2, [4, 5]) == [5]


def test_frames_round_trip_across_arbitrary_splits():
    async def main():
        send, recv = trio.testing.memory_stream_one_way_pair()
        reader = FrameReader(recv)
        data = encode_frame({"op": "chunk", "id": "a", "token_ids": [1, 2]}) + encode_frame({"op": "ready"})
        for i in range(0, len(data), 3):  # dribble 3 bytes at a time
            await send.send_all(data[i : i + 3])
        await send.aclose()
        assert await reader.receive() == {"op": "chunk", "id": "a", "token_ids": [1, 2]}
        assert await reader.receive() == {"op": "ready"}
        assert await reader.receive() is None

        send, recv = trio.testing.memory_stream_one_way_pair()
        await send.send_all(b"\x00\x00\x00\x01\xc1")  # 0xc1 is never valid msgpack
        with pytest.raises(FrameError):
            await FrameReader(recv).receive()

    trio.run(main)


# ---- what a runner is started with: no node secrets; the hub download gets the configured token ----

from tests.models.conftest import fake_hub, loopback_only, write_tiny_model  # noqa: E402,F401 (fixtures)

from skulk.runner.launch import is_secret_env_name, resolve_model_dir  # noqa: E402

HUB_TOKEN = "hf_configured_token"


def test_runner_env_drops_every_secret_of_the_node():
    parent = {"PATH": "/bin", "HOME": "/home/u", "MLX_METAL_FAST_SYNCH": "1", "KEYBOARD": "us",
              "HF_TOKEN": "hf_parent", "FOO_TOKEN": "x", "SKULK_HF_TOKEN": "t", "OPENAI_API_KEY": "k",
              "AWS_SECRET_ACCESS_KEY": "a", "DB_PASSWORD": "p", "SKULK_CLUSTER__SECRET": "s",
              "SKULK_CLUSTER__SECRET_FILE": "/f", "SKULK_AUTH__API_KEYS": "k", "github_token": "g"}
    env = worker_env(parent, None, 0, 1, None, 4)
    assert {"PATH", "HOME", "MLX_METAL_FAST_SYNCH", "KEYBOARD"} <= set(env)
    leaked = set(parent) & set(env) - {"PATH", "HOME", "MLX_METAL_FAST_SYNCH", "KEYBOARD"}
    assert leaked == set()
    assert not any(value in ("hf_parent", "s", "k", HUB_TOKEN) for value in env.values())
    assert is_secret_env_name("HUGGING_FACE_HUB_TOKEN") and not is_secret_env_name("MONKEY_PATH")


@pytest.fixture
def gated_hub(fake_hub, loopback_only, tmp_path):
    fake_hub.add_repo("acme/gated", write_tiny_model(tmp_path / "source"))
    fake_hub.required_token = HUB_TOKEN
    return fake_hub


def test_a_gated_model_downloads_only_with_the_configured_token(gated_hub, tmp_path):
    with pytest.raises(SkulkError):
        resolve_model_dir("acme/gated", tmp_path / "models", (), False, endpoint=gated_hub.url)
    path = resolve_model_dir("acme/gated", tmp_path / "models", (), False, endpoint=gated_hub.url,
                             hf_token=HUB_TOKEN)
    assert (path / "config.json").is_file() and path.parent == tmp_path / "models"


def test_the_supervisor_passes_its_token_to_the_hub_download(gated_hub, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from skulk.runner.supervisor import RunnerSupervisor

    # The supervisor downloads from the default hub: point that (API and file URLs) at the fake one.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", gated_hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        gated_hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    inst = ring_instance(1, model_id="acme/gated")

    def supervisor(token):
        return RunnerSupervisor("runner-0", inst, "node-0", models_dir=tmp_path / f"models-{token}",
                                on_status=lambda *_: None, on_output=lambda *_: None, hf_token=token)

    without = supervisor(None)
    assert trio.run(without._resolve_model) is None and "acme/gated" in (without._failure or "")
    assert (trio.run(supervisor(HUB_TOKEN)._resolve_model) / "config.json").is_file()
