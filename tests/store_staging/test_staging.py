"""Staging from a real store server on 127.0.0.1, in process: verified, atomic, resumable."""

import logging
from pathlib import Path

import httpx
import pytest
import trio

from skulk.store.client import HttpBackend
from skulk.store.errors import ModelNotInStore, StagingFailed, StoreUnreachable
from skulk.store.host import StoreHost
from skulk.store.inventory import PARTIAL_DIR, write_marker
from skulk.store.registry import Registry, model_files
from skulk.store.server import make_store_app, serve_store
from skulk.store.staging import Stager
from skulk.testing.cluster import free_port
from skulk.types.downloads import DownloadCompleted, DownloadFailed, DownloadOngoing
from tests.store_staging.conftest import TINY


def run_with_store(host: StoreHost, scenario):
    """trio.run(scenario(url)) with `host` served on a free loopback port."""
    async def main():
        port = free_port()
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)
            await nursery.start(serve_store, make_store_app(host), "127.0.0.1", port)
            try:
                return await scenario(f"http://127.0.0.1:{port}")
            finally:
                nursery.cancel_scope.cancel()
    return trio.run(main)


def stager(root: Path, url: str, events: list, **kw) -> Stager:
    return Stager(root, lambda: HttpBackend(url), node_id="me", emit=events.append,
                  allow_hf_fallback=kw.pop("allow_hf_fallback", True), poll_interval=0.05, **kw)


def same_files(a: Path, b: Path) -> bool:
    rel = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in model_files(d)}  # noqa: E731
    return rel(a) == rel(b)


def progress(events: list) -> list:
    return [e.download_progress for e in events]


def test_stage_copies_every_file_verified_and_appears_all_at_once(store_root, tmp_path):
    events = []

    async def scenario(url):
        return await stager(tmp_path / "staging", url, events).stage(TINY)

    staged = run_with_store(StoreHost(store_root, allow_hf_fallback=False), scenario)
    assert staged == tmp_path / "staging" / "org--tiny"
    assert same_files(staged, store_root / "org--tiny") and (staged / "sub" / "extra.json").is_file()
    assert (staged / ".skulk-staged").read_text() == f"{TINY}\n"  # the store's claim: only such dirs are evicted
    assert (staged / ".last_used").read_text() == TINY
    assert not any((tmp_path / "staging" / PARTIAL_DIR).iterdir())
    kinds = progress(events)
    assert isinstance(kinds[0], DownloadOngoing) and isinstance(kinds[-1], DownloadCompleted)
    assert kinds[-1].total_bytes == Registry(store_root).get(TINY).total_bytes


def test_a_cut_short_copy_resumes_keeping_finished_files(store_root, tmp_path, caplog):
    partial = tmp_path / "staging" / PARTIAL_DIR / "org--tiny"
    partial.mkdir(parents=True)
    source = store_root / "org--tiny"
    (partial / "config.json").write_bytes((source / "config.json").read_bytes())
    weights = (source / "model.safetensors").read_bytes()
    (partial / "model.safetensors.part").write_bytes(weights[: len(weights) // 2])

    async def scenario(url):
        return await stager(tmp_path / "staging", url, []).stage(TINY)

    with caplog.at_level(logging.INFO, logger="skulk.store.staging"):
        staged = run_with_store(StoreHost(store_root, allow_hf_fallback=False), scenario)
    assert same_files(staged, source)
    assert "reusing finished config.json" in caplog.text
    assert f"resuming model.safetensors from byte {len(weights) // 2}" in caplog.text


def test_bytes_that_do_not_match_the_registry_are_never_published(store_root, tmp_path):
    partial = tmp_path / "staging" / PARTIAL_DIR / "org--tiny"
    partial.mkdir(parents=True)
    size = (store_root / "org--tiny" / "model.safetensors").stat().st_size
    (partial / "model.safetensors.part").write_bytes(b"\0" * (size // 2))  # garbage from a bad disk
    events = []

    async def scenario(url):
        s = stager(tmp_path / "staging", url, events)
        with pytest.raises(StagingFailed, match="does not match the store's registry"):
            await s.stage(TINY)
        assert not (tmp_path / "staging" / "org--tiny").exists()
        return await s.stage(TINY)  # the bad part was dropped; a retry copies it cleanly

    staged = run_with_store(StoreHost(store_root, allow_hf_fallback=False), scenario)
    assert same_files(staged, store_root / "org--tiny")
    assert any(isinstance(p, DownloadFailed) and "registry" in p.error_message for p in progress(events))


def test_store_unreachable_fails_with_a_message_saying_so(tmp_path):
    events = []
    url = f"http://127.0.0.1:{free_port()}"

    async def scenario():
        with pytest.raises(StoreUnreachable, match=f"Store unreachable: the model store at {url}"):
            await stager(tmp_path / "staging", url, events).stage(TINY)

    trio.run(scenario)
    assert not (tmp_path / "staging" / "org--tiny").exists()
    failed = progress(events)[-1]
    assert isinstance(failed, DownloadFailed) and "Store unreachable" in failed.error_message


def _stage_without_store(root: Path) -> Path:
    def no_store():
        raise AssertionError("the store was contacted")

    async def scenario():
        s = Stager(root, no_store, node_id="me", emit=lambda e: None, allow_hf_fallback=False)
        return await s.stage(TINY)

    return trio.run(scenario)


def test_an_already_staged_model_is_used_without_asking_the_store(store_root, tmp_path):
    staged_dir = tmp_path / "staging" / "org--tiny"
    staged_dir.parent.mkdir()
    (store_root / "org--tiny").rename(staged_dir)
    write_marker(staged_dir, TINY)
    assert _stage_without_store(tmp_path / "staging") == staged_dir and (staged_dir / ".last_used").is_file()


def test_a_loadable_copy_the_store_did_not_make_is_used_but_never_written_to(store_root, tmp_path):
    legacy = tmp_path / "staging" / "org--tiny"  # e.g. staged before markers, or put there by hand
    legacy.parent.mkdir()
    (store_root / "org--tiny").rename(legacy)
    before = sorted(p.name for p in legacy.iterdir())
    assert _stage_without_store(tmp_path / "staging") == legacy
    assert sorted(p.name for p in legacy.iterdir()) == before


def test_staging_never_writes_through_a_symlinked_partial_dir(store_root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "staging" / PARTIAL_DIR).mkdir(parents=True)
    (tmp_path / "staging" / PARTIAL_DIR / "org--tiny").symlink_to(outside, target_is_directory=True)

    async def scenario(url):
        with pytest.raises(StagingFailed, match="symbolic link"):
            await stager(tmp_path / "staging", url, []).stage(TINY)

    run_with_store(StoreHost(store_root, allow_hf_fallback=False), scenario)
    assert list(outside.iterdir()) == []


def test_a_model_missing_from_the_store_fails_when_hub_fallback_is_off(store_root, tmp_path):
    async def scenario(url):
        with pytest.raises(ModelNotInStore, match="allow_hf_fallback is false"):
            await stager(tmp_path / "staging", url, [], allow_hf_fallback=False).stage("org/absent")

    run_with_store(StoreHost(store_root, allow_hf_fallback=False), scenario)


def test_the_store_host_fetches_a_missing_model_from_the_hub_then_it_is_staged(
        store_root, tmp_path, fake_hub, loopback_only):
    fake_hub.add_repo("org/fresh", (store_root / "org--tiny"))
    host = StoreHost(store_root, allow_hf_fallback=True, hub_endpoint=fake_hub.url)

    async def scenario(url):
        staged = await stager(tmp_path / "staging", url, []).stage("org/fresh")
        status = await HttpBackend(url).download_status("org/fresh")
        return staged, status

    staged, status = run_with_store(host, scenario)
    assert status["status"] == "completed"
    assert Registry(store_root).get("org/fresh") is not None
    assert same_files(staged, store_root / "org--fresh")
    assert any("/resolve/" in r for r in fake_hub.requests)


def test_the_store_server_serves_registered_files_only_and_honours_range(store_root):
    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, trust_env=False) as c:
            whole = await c.get("/files/org--tiny/config.json")
            part = await c.get("/files/org--tiny/config.json", headers={"Range": "bytes=5-"})
            escape = await c.get("/files/org--tiny/..%2Fregistry.json")
            unlisted = await c.get("/files/org--tiny/.last_used")
            registry = (await c.get("/registry")).json()
            health = (await c.get("/health")).json()
            missing = await c.get("/models/org/absent/files")
        return whole, part, escape, unlisted, registry, health, missing

    whole, part, escape, unlisted, registry, health, missing = run_with_store(
        StoreHost(store_root, allow_hf_fallback=False), scenario)
    assert whole.status_code == 200 and part.status_code == 206 and part.content == whole.content[5:]
    assert escape.status_code == 404 and unlisted.status_code == 404
    entry, = registry["entries"]
    assert entry["model_id"] == TINY and {f["path"] for f in entry["files"]} >= {"config.json", "sub/extra.json"}
    assert entry["total_bytes"] == sum(f["size"] for f in entry["files"])
    assert set(health) == {"storePath", "freeBytes", "totalBytes", "usedBytes"}
    assert missing.status_code == 404 and "not in the store" in missing.json()["error"]["message"]


def test_a_model_dir_copied_into_the_store_by_hand_is_registered(store_root, tmp_path):
    (store_root / "org--tiny").rename(store_root / "acme--hand")
    host = StoreHost(store_root, allow_hf_fallback=False)
    assert host.register_unlisted() == ["acme/hand"]
    assert host.entry("acme/hand").files and host.register_unlisted() == []
