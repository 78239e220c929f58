"""The one durable file writer: temp file + fsync + rename + directory fsync, modes kept, old file
intact on failure; and the files that must use it (identity, incarnation, config, traces)."""

import os
import stat

import pytest

from skulk import atomic_files
from skulk.atomic_files import write_file_atomically
from skulk.config.sync import write_config_file
from skulk.net.identity import load_or_create_keypair, node_id_of
from skulk.node.incarnation import next_incarnation
from skulk.node.traces import write_trace


@pytest.fixture
def fsyncs(monkeypatch):
    """Every fd passed to os.fsync, as (is_dir, path) pairs."""
    calls = []
    real = os.fsync

    def recording(fd):
        st = os.fstat(fd)
        calls.append((stat.S_ISDIR(st.st_mode), os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(atomic_files.os, "fsync", recording)
    return calls


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_fsyncs_the_file_then_the_directory(tmp_path, fsyncs):
    target = tmp_path / "sub" / "f.bin"
    write_file_atomically(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert len(fsyncs) == 2
    (file_is_dir, _), (dir_is_dir, dir_path) = fsyncs
    assert not file_is_dir  # the temp file's contents first...
    assert dir_is_dir and dir_path == str(target.parent)  # ...then the rename, via the directory
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]  # no temp file left


def test_exception_mid_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    write_file_atomically(target, b"old contents")

    class Boom(Exception):
        pass

    def failing_fsync(fd):
        raise Boom("disk gone")  # after the write, before the rename

    monkeypatch.setattr(atomic_files.os, "fsync", failing_fsync)
    with pytest.raises(Boom):
        write_file_atomically(target, b"new contents that never land")
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_unencodable_text_fails_before_touching_the_file(tmp_path):
    target = tmp_path / "t.txt"
    write_file_atomically(target, "v1")
    with pytest.raises(UnicodeEncodeError):
        write_file_atomically(target, "\udcff")  # a lone surrogate cannot be UTF-8
    assert target.read_text() == "v1"


def test_modes_new_private_replaced_kept_explicit_wins(tmp_path):
    new = tmp_path / "new"
    write_file_atomically(new, b"x")
    assert _mode(new) == 0o600
    shared = tmp_path / "shared"
    shared.write_bytes(b"x")
    shared.chmod(0o644)
    write_file_atomically(shared, b"y")
    assert _mode(shared) == 0o644
    write_file_atomically(shared, b"z", mode=0o640)
    assert _mode(shared) == 0o640


def test_identity_key_is_written_durably_private_and_reloads(tmp_path, fsyncs):
    key_file = tmp_path / "home" / "node.key"
    first = load_or_create_keypair(key_file)
    assert _mode(key_file) == 0o600
    assert any(is_dir for is_dir, _ in fsyncs) and any(not is_dir for is_dir, _ in fsyncs)
    assert node_id_of(load_or_create_keypair(key_file)) == node_id_of(first)


def test_incarnation_counts_up_durably(tmp_path, fsyncs):
    path = tmp_path / "incarnation"
    assert [next_incarnation(path) for _ in range(3)] == [1, 2, 3]
    assert path.read_text() == "3\n"
    assert len(fsyncs) == 6  # file + directory for each start
    assert [p.name for p in tmp_path.iterdir()] == ["incarnation"]


def test_config_file_durable_and_private_when_it_holds_a_secret(tmp_path, fsyncs):
    path = tmp_path / "skulk.yaml"
    write_config_file(path, {"node_name": "a"})
    assert _mode(path) == 0o644
    write_config_file(path, {"node_name": "a", "cluster": {"secret": "s3cret"}})
    assert _mode(path) == 0o600
    write_config_file(path, {"hf_token": "hf_x"})
    assert _mode(path) == 0o600
    assert len(fsyncs) == 6


def test_trace_file_durable(tmp_path, fsyncs):
    path = write_trace(tmp_path, "task-1", [{"ph": "X", "ts": 1}])
    assert path.read_text() == '{"traceEvents": [{"ph": "X", "ts": 1}]}'
    assert len(fsyncs) == 2
