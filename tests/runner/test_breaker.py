"""CrashBreaker is pure: a transcript of (now, failure) in, open/closed out."""

import pytest

from skulk.runner import CrashBreaker


def test_opens_on_the_third_failure_within_the_window_and_stays_open():
    b = CrashBreaker()
    assert [b.record_failure(t) for t in (0.0, 10.0)] == [False, False]
    assert not b.is_open(10.0)
    assert b.record_failure(59.0) is True  # the edge: reported once
    assert b.is_open(59.0) and b.opened_at == 59.0
    assert b.record_failure(60.0) is False  # already open: no second edge
    assert b.is_open(10_000.0)  # latched: a crash loop is not retried when the window drains


def test_failures_outside_the_window_do_not_count():
    b = CrashBreaker(threshold=3, window_s=60.0)
    for t in (0.0, 30.0, 61.0, 95.0):  # never three inside any 60 s window
        assert b.record_failure(t) is False
    assert not b.is_open(95.0)
    assert b.recent_failures(95.0) == 2  # 61 and 95; 30 fell out at 90
    assert b.record_failure(100.0) is True


def test_exactly_window_apart_is_outside():
    b = CrashBreaker(threshold=2, window_s=60.0)
    b.record_failure(0.0)
    assert b.record_failure(60.0) is False
    assert b.record_failure(60.5) is True


def test_reset_closes_and_forgets():
    b = CrashBreaker(threshold=1)
    assert b.record_failure(5.0) is True
    b.reset()
    assert not b.is_open(5.0) and b.recent_failures(5.0) == 0
    assert b.record_failure(6.0) is True


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CrashBreaker(threshold=0)
    with pytest.raises(ValueError):
        CrashBreaker(window_s=0)
