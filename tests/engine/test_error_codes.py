"""One table turns a request's error code into the status and retry flag its client sees."""

import pytest

from skulk.engine.error_codes import DEFAULT, ERROR_CODES, error_chunk, status_of
from skulk.node.streams import CANCELLED, CANCELLED_BY_REQUEST, SESSION_CHANGED, node_lost


@pytest.mark.parametrize(("code", "status", "retryable"), [
    ("context_length_exceeded", 400, False),  # the request's fault: sending it again fails again
    ("not_an_embedding_model", 400, False),
    ("cancelled", 499, False),
    ("runner_failed", 500, True),  # the runner went away: another try can succeed
    ("runner_unavailable", 500, True),
    ("instance_lost", 500, True),
    ("session_changed", 503, True),
    ("request_params_missing", 503, True),
    ("request_timeout", 504, False),
    ("stream_stalled", 504, True),
    ("runner_error", 500, False),  # unknown to the table: the default
    (None, 500, False),
])
def test_codes_map_to_one_status_and_retry_flag(code, status, retryable):
    assert status_of(code) == (status, retryable)
    chunk = error_chunk(code, "why")
    assert (chunk.status_code, chunk.retryable, chunk.error_message) == (status, retryable, "why")
    assert chunk.error_type == (code or "runner_error")


def test_the_api_nodes_own_endings_come_from_the_table():
    for chunk in (CANCELLED, CANCELLED_BY_REQUEST, SESSION_CHANGED, node_lost("n1")):
        assert (chunk.status_code, chunk.retryable) == ERROR_CODES[chunk.error_type]


def test_the_table_only_holds_http_error_statuses():
    assert all(400 <= status < 600 for status, _ in [*ERROR_CODES.values(), DEFAULT])
