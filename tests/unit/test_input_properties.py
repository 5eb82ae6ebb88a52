"""Whatever bytes a client sends, the JSON reader and the rules answer a 4xx or a value
that every later step can take: JSON encoding (strict, as httpx sends it), UTF-8
storage, the table's columns. Property-based, with hypothesis.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from cello import Request
from hypothesis import given, settings
from hypothesis import strategies as st

from cello_problem import MAX_DEPTH, HTTPError, loads_strict, read_json_object
from db.routes import stored_fields
from users.rules import EMAIL_MAX, NAME_MAX, validate_new_user

FIELDS = frozenset({"name", "email"})
# Deterministic (the same examples on every run, no example database written).
PROPERTY = settings(max_examples=400, deadline=None, database=None, derandomize=True)

# Every kind of character, lone surrogates and controls included.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
USER_LIKE = st.dictionaries(
    st.sampled_from(["name", "email"]), st.one_of(JSON_VALUES, ANY_TEXT), max_size=2
)
# Hand-written edge cases of each class, beside what hypothesis draws.
RAW_BODIES = [
    b'{"name": NaN, "email": "n@b.io"}',
    b'{"name": Infinity, "email": "n@b.io"}',
    b'{"name": -Infinity, "email": "n@b.io"}',
    b'{"name": 1e999, "email": "n@b.io"}',
    b'{"name": -1e400, "email": "n@b.io"}',
    b'{"name": ' + b"9" * 5000 + b', "email": "n@b.io"}',
    b'{"name": "a\\ud800b", "email": "n@b.io"}',
    b'{"name": "Ada", "email": "n@b.io\\udfff"}',
    b'{"\\ud800": 1}',
    b'{"name": "Ada", "name": "Eve", "email": "n@b.io"}',
    b"[" * 8000 + b"]" * 8000,
    b'{"a":' * 2500 + b"1" + b"}" * 2500,
    b'{"name": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
    b'{"name": "A\\u0000da", "email": "nul@b.io"}',
]


def _request(body: bytes) -> Request:
    return Request("POST", "/users", headers={"content-type": "application/json"}, body=body)


def _outcome(call: Callable[[], Any], *refusals: type[Exception]) -> Any:
    """What ``call`` returns, or the exception among ``refusals`` it raises."""
    try:
        return call()
    except refusals as refused:
        return refused


def _read(body: bytes) -> dict[str, Any] | HTTPError:
    outcome: dict[str, Any] | HTTPError = _outcome(
        lambda: read_json_object(_request(body), FIELDS), HTTPError
    )
    return outcome


def _sendable(value: Any) -> None:
    """What httpx does with ``json=``, and what a UTF-8 column needs: must not raise."""
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


def _json_text(value: Any, ascii_only: bool) -> bytes:
    # ensure_ascii writes a lone surrogate as \\udXXX, as a hostile client would.
    text = json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)
    return text.encode("utf-8", errors="surrogatepass")


@pytest.mark.parametrize("body", RAW_BODIES, ids=range(len(RAW_BODIES)))
def test_each_class_of_hostile_body_is_a_400_or_sendable(body: bytes) -> None:
    outcome = _read(body)
    if isinstance(outcome, HTTPError):
        assert outcome.status == 400, outcome
    else:
        _sendable(outcome)


@PROPERTY
@given(st.binary(max_size=200))
def test_any_bytes_are_a_4xx_or_a_sendable_object(body: bytes) -> None:
    outcome = _read(body)
    if isinstance(outcome, HTTPError):
        assert 400 <= outcome.status < 500
    else:
        assert isinstance(outcome, dict)
        _sendable(outcome)


@PROPERTY
@given(st.one_of(JSON_VALUES, USER_LIKE), st.booleans())
def test_any_json_is_a_4xx_or_a_sendable_object(value: Any, ascii_only: bool) -> None:
    outcome = _read(_json_text(value, ascii_only))
    if isinstance(outcome, HTTPError):
        assert 400 <= outcome.status < 500
    else:
        _sendable(outcome)
        assert set(outcome) <= FIELDS


@PROPERTY
@given(st.integers(min_value=1, max_value=MAX_DEPTH + 8))
def test_nesting_up_to_the_limit_is_read_and_deeper_is_a_400(depth: int) -> None:
    body = b'{"name": ' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    outcome = _read(body)
    if depth <= MAX_DEPTH:
        assert isinstance(outcome, dict)
    else:
        assert isinstance(outcome, HTTPError)
        assert outcome.status == 400


@PROPERTY
@given(st.one_of(JSON_VALUES, ANY_TEXT))
def test_loads_strict_reads_back_what_strict_json_writes(value: Any) -> None:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return  # not strict JSON: the other properties cover it
    outcome = _outcome(lambda: loads_strict(text), ValueError)
    if isinstance(outcome, ValueError):  # only for what loads_strict documents
        assert "nests deeper" in str(outcome), outcome
    else:
        assert outcome == value


@PROPERTY
@given(USER_LIKE)
def test_users_rules_accept_only_a_storable_user_or_say_422(body: dict[str, Any]) -> None:
    outcome = _outcome(lambda: validate_new_user(body), HTTPError)
    if isinstance(outcome, HTTPError):
        assert outcome.status == 422
        assert {e["field"] for e in outcome.extra["errors"]} <= FIELDS
        return
    name, email = outcome
    _sendable([name, email])
    assert 1 <= len(name) <= NAME_MAX
    assert len(email) <= EMAIL_MAX
    assert not any(unicodedata.category(ch).startswith("C") for ch in name + email)


@PROPERTY
@given(USER_LIKE)
def test_db_takes_only_what_its_columns_store_or_says_422(body: dict[str, Any]) -> None:
    outcome = _outcome(lambda: stored_fields(body), HTTPError)
    if isinstance(outcome, HTTPError):
        assert outcome.status == 422
        return
    name, email = outcome
    assert 0 < len(name) <= 100
    assert 0 < len(email) <= 254
    assert "\x00" not in name + email


def test_db_refuses_nul_which_postgresql_cannot_store() -> None:
    with pytest.raises(HTTPError) as refused:
        stored_fields({"name": "A\x00da", "email": "a@b.io"})
    assert refused.value.status == 422
    assert refused.value.extra["errors"] == [
        {"field": "name", "message": "a string of 1 to 100 characters, without NUL"}
    ]
