"""The pure parts of access control: key verification and its cache, the master's key deciders
and their apply, the bootstrap decision, and the key records' shape."""

from datetime import datetime, timedelta, timezone

import pytest

from skulk.errors import BadRequest, NotFound
from skulk.master.authorize import authorize_event
from skulk.master.dispatch import DecideContext, decide, expired_keys
from skulk.node.access_bootstrap import admin_record, bootstrap_action, configured_key
from skulk.state import api_keys as key_cache
from skulk.state.api_keys import KeyVerifier
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.access import ApiKeyRecord, hash_key, key_id_hint, new_key, new_salt
from skulk.types.state import State

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(key_id: str, role: str = "user", expires_at=None, key: str | None = None) -> tuple[str, ApiKeyRecord]:
    key = key or new_key(key_id)
    salt = new_salt()
    return key, ApiKeyRecord(id=key_id, name=key_id, role=role, created_at=NOW, expires_at=expires_at,
                             salt=salt, key_hash=hash_key(key, salt))


def test_a_record_holds_a_salted_hash_never_the_key():
    key, rec = record("k1")
    assert key.startswith("sk-skulk-k1.") and key_id_hint(key) == "k1"
    assert key not in rec.model_dump_json() and key.split(".")[1] not in rec.model_dump_json()
    _, again = record("k1", key=key)
    assert again.key_hash != rec.key_hash  # a fresh salt each time
    assert key_id_hint("my-own-admin-key-000") is None


def test_the_verifier_hashes_once_per_key_and_follows_revocation(monkeypatch):
    calls = []
    real = key_cache.key_matches
    monkeypatch.setattr(key_cache, "key_matches", lambda k, r: calls.append(r.id) or real(k, r))
    key, rec = record("k1")
    records = {"k1": rec}
    v = KeyVerifier()
    assert all(v.verify(key, records, NOW) == rec for _ in range(50))
    assert calls == ["k1"]  # scrypt ran once
    assert v.verify(key, {}, NOW) is None  # revoked: gone from the records
    replaced = {"k1": record("k1")[1]}  # same id, another key's hash
    assert v.verify(key, replaced, NOW) is None


def test_the_verifier_refuses_expired_wrong_and_oversized_keys():
    key, rec = record("k1", expires_at=NOW + timedelta(seconds=3))
    v = KeyVerifier()
    assert v.verify(key, {"k1": rec}, NOW) == rec
    assert v.verify(key, {"k1": rec}, NOW + timedelta(seconds=3)) is None
    assert v.verify("sk-skulk-k1.guess", {"k1": rec}, NOW) is None
    assert v.verify("x" * 10_000, {"k1": rec}, NOW) is None
    assert v.verify("sk-skulk-zz.guess", {"k1": rec}, NOW) is None  # unknown id: no hashing at all


def test_a_free_form_configured_key_is_found_by_hash():
    rec = admin_record("a-long-operator-chosen-admin-key", NOW, "admin")
    assert rec.id.startswith("cfg-") and rec.role == "admin"
    v = KeyVerifier()
    assert v.verify("a-long-operator-chosen-admin-key", {rec.id: rec}, NOW) == rec
    assert v.verify("another-long-operator-key-000", {rec.id: rec}, NOW) is None


def test_deciders_create_revoke_touch_and_expire():
    key, rec = record("k1", expires_at=NOW + timedelta(seconds=3))
    state = State()
    events = decide(state, cmd.CreateApiKey(record=rec), DecideContext(now=NOW))
    assert [type(e) for e in events] == [ev.ApiKeyCreated]
    state = apply_event(state, events[0])
    assert state.api_keys == {"k1": rec}
    assert decide(state, cmd.CreateApiKey(record=rec), DecideContext()) == []  # same record again
    with pytest.raises(BadRequest):
        decide(state, cmd.CreateApiKey(record=record("k1")[1]), DecideContext())
    touched = decide(state, cmd.TouchApiKeys(last_used={"k1": NOW, "ghost": NOW}), DecideContext(now=NOW))
    state = apply_event(state, touched[0])
    assert state.api_keys["k1"].last_used_at == NOW and "ghost" not in touched[0].last_used
    assert expired_keys(state, NOW) == []
    gone = expired_keys(state, NOW + timedelta(seconds=3))
    assert [e.key_id for e in gone] == ["k1"]
    assert apply_event(state, gone[0]).api_keys == {}
    revoked = decide(state, cmd.RevokeApiKey(key_id="k1"), DecideContext())
    assert apply_event(state, revoked[0]).api_keys == {}
    with pytest.raises(NotFound):
        decide(State(), cmd.RevokeApiKey(key_id="k1"), DecideContext())


def test_only_the_first_bootstrap_admin_key_is_registered():
    _, first = record("a1", role="admin")
    _, second = record("a2", role="admin")
    state = apply_event(State(), ev.ApiKeyCreated(record=first))
    assert decide(state, cmd.CreateApiKey(record=second, only_if_no_admin=True), DecideContext()) == []
    assert decide(State(), cmd.CreateApiKey(record=second, only_if_no_admin=True), DecideContext())


def test_peers_may_not_send_key_events():
    _, rec = record("k1", role="admin")
    for event in (ev.ApiKeyCreated(record=rec), ev.ApiKeyRevoked(key_id="k1"), ev.ApiKeysTouched()):
        assert authorize_event(State(), "12D3KooWpeer", event) is not None


def test_bootstrap_decision():
    _, admin = record("a1", role="admin")
    _, user = record("u1")
    never = lambda key: False  # noqa: E731
    assert bootstrap_action({}, None, True, never) is None  # loopback, no keys: stays open
    assert bootstrap_action({}, None, False, never) == "create"
    assert bootstrap_action({"u1": user}, None, False, never) == "create"  # users but no admin
    assert bootstrap_action({"a1": admin}, None, False, never) is None
    assert bootstrap_action({}, "configured", True, never) == "register"
    assert bootstrap_action({"a1": admin}, "configured", False, lambda key: True) is None


def test_configured_key_sources(tmp_path):
    from types import SimpleNamespace
    assert configured_key(SimpleNamespace(admin_key="k" * 20, admin_key_file=None), tmp_path) == "k" * 20
    f = tmp_path / "key.txt"
    f.write_text("  file-key-0123456789\n")
    assert configured_key(SimpleNamespace(admin_key=None, admin_key_file=f), tmp_path) == "file-key-0123456789"
    assert configured_key(SimpleNamespace(admin_key=None, admin_key_file=None), tmp_path) is None
    (tmp_path / "admin.key").write_text("made-earlier\n")
    assert configured_key(SimpleNamespace(admin_key=None, admin_key_file=None), tmp_path) == "made-earlier"
