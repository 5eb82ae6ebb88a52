"""HTTPError and problem+json, strict input readers, and the users service rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cello import Request

from cello_problem import (
    MAX_BODY_BYTES,
    MAX_ID,
    PROBLEM_JSON,
    HTTPError,
    path_id,
    problem_response,
    query_int,
    read_json_object,
)
from users.rules import EMAIL_MAX, NAME_MAX, validate_new_user

FIELDS = frozenset({"name", "email"})


def json_request(body: bytes, content_type: str | None = "application/json") -> Request:
    headers = {} if content_type is None else {"content-type": content_type}
    return Request("POST", "/users", headers=headers, body=body)


def raised(call: Any) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        call()
    return info.value


# -- HTTPError and problem+json ------------------------------------------------------------------


def test_problem_response_is_rfc9457_problem_json() -> None:
    error = HTTPError(404, "user 7 does not exist")

    response = problem_response(error, "/users/7")

    assert response.status == 404
    assert response.headers["Content-Type"] == PROBLEM_JSON == "application/problem+json"
    assert json.loads(bytes(response.body())) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "user 7 does not exist",
        "instance": "/users/7",
    }


def test_problem_without_detail_or_instance_omits_them() -> None:
    assert HTTPError(409).to_problem() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
    }


def test_problem_carries_extra_members_and_a_custom_title() -> None:
    error = HTTPError(422, "bad", title="Invalid user", extra={"errors": [{"field": "name"}]})

    assert error.to_problem("/u") == {
        "type": "about:blank",
        "title": "Invalid user",
        "status": 422,
        "detail": "bad",
        "instance": "/u",
        "errors": [{"field": "name"}],
    }


def test_unknown_status_gets_a_generic_title() -> None:
    error = HTTPError(599, "odd")

    assert error.title == "Error"
    assert str(error) == "599 Error: odd"


def test_str_names_status_title_and_detail() -> None:
    assert str(HTTPError(503, "db-service is unavailable")) == (
        "503 Service Unavailable: db-service is unavailable"
    )
    assert str(HTTPError(400)) == "400 Bad Request"


def test_from_problem_keeps_only_documented_members() -> None:
    body = {
        "type": "https://evil.example/x",
        "title": "Totally Fine",
        "status": 200,
        "detail": "user 7 does not exist",
        "instance": "/internal/db/users/7",
        "errors": [{"field": "email", "message": "taken"}],
        "debug": {"sql": "SELECT * FROM users"},
    }

    error = HTTPError.from_problem(404, body)

    assert error.status == 404
    assert error.to_problem("/api/users/7") == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "user 7 does not exist",
        "instance": "/api/users/7",
        "errors": [{"field": "email", "message": "taken"}],
    }


@pytest.mark.parametrize(
    "body",
    [None, [], "text", 3, {"detail": 5, "errors": "not-a-list"}, {"detail": None}],
)
def test_from_problem_ignores_malformed_members(body: Any) -> None:
    error = HTTPError.from_problem(409, body)

    assert error.to_problem() == {"type": "about:blank", "title": "Conflict", "status": 409}


# -- read_json_object ----------------------------------------------------------------------------


def test_read_json_object_returns_the_object() -> None:
    request = json_request(b'{"name": "Ada", "email": "ada@example.com"}')

    assert read_json_object(request, FIELDS) == {"name": "Ada", "email": "ada@example.com"}


def test_read_json_object_accepts_parameters_and_case_in_the_content_type() -> None:
    request = json_request(b'{"name": "Ada"}', "Application/JSON; charset=utf-8")

    assert read_json_object(request, FIELDS) == {"name": "Ada"}


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "json"]
)
def test_read_json_object_415_for_other_content_types(content_type: str | None) -> None:
    error = raised(lambda: read_json_object(json_request(b"{}", content_type), FIELDS))

    assert error.status == 415
    assert error.detail == "send the body as application/json"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'name': 'Ada'}",
        b'{"name": "Ada",}',
        b'{"name": "\xff\xfe"}',
        b"\xc3\x28",
        '{"name": "Ada"}'.encode("utf-16"),
        '{"name": "Ada"}'.encode("utf-32"),
    ],
    ids=["empty", "truncated", "single-quotes", "trailing-comma", "bad-utf8", "bad-utf8-2",
         "utf16", "utf32"],
)  # fmt: skip
def test_read_json_object_400_for_invalid_json_or_encoding(body: bytes) -> None:
    error = raised(lambda: read_json_object(json_request(body), FIELDS))

    assert error.status == 400
    assert error.detail == "the body is not valid JSON"


def test_read_json_object_accepts_a_body_of_exactly_the_limit() -> None:
    padding = MAX_BODY_BYTES - len(b'{"name": ""}')
    body = b'{"name": "' + b"x" * padding + b'"}'
    assert len(body) == MAX_BODY_BYTES

    assert read_json_object(json_request(body), FIELDS) == {"name": "x" * padding}


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 10 * MAX_BODY_BYTES])
def test_read_json_object_413_over_the_limit(size: int) -> None:
    body = b'{"name": "' + b"x" * (size - len(b'{"name": ""}')) + b'"}'
    assert len(body) == size

    error = raised(lambda: read_json_object(json_request(body), FIELDS))

    assert error.status == 413
    assert error.detail == f"the body is over {MAX_BODY_BYTES} bytes"


def test_read_json_object_checks_the_content_type_before_the_size() -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)

    assert raised(lambda: read_json_object(json_request(body, "text/plain"), FIELDS)).status == 415


@pytest.mark.parametrize("body", [b"[]", b'["name"]', b"null", b"42", b'"name"', b"true"])
def test_read_json_object_400_for_non_objects(body: bytes) -> None:
    error = raised(lambda: read_json_object(json_request(body), FIELDS))

    assert error.status == 400
    assert error.detail == "the body must be a JSON object"


def test_read_json_object_422_lists_every_unknown_member_sorted() -> None:
    request = json_request(b'{"name": "Ada", "role": "admin", "id": 1}')

    error = raised(lambda: read_json_object(request, FIELDS))

    assert error.status == 422
    assert error.to_problem()["errors"] == [
        {"field": "id", "message": "not allowed"},
        {"field": "role", "message": "not allowed"},
    ]


# -- path_id and query_int -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", 1), ("42", 42), ("007", 7), (str(MAX_ID), MAX_ID)]
)
def test_path_id_accepts_positive_64_bit_ids(raw: str, expected: int) -> None:
    assert path_id({"id": raw}) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "0", "00", "-1", "+1", "1.0", "1e3", "abc", " 1", "1 ", "0x10", "\u0661",
     str(MAX_ID + 1), str(2**64), "9" * 20, "1" * 5000],
)  # fmt: skip
def test_path_id_400_for_anything_else(raw: str) -> None:
    error = raised(lambda: path_id({"id": raw}))

    assert error.status == 400
    assert error.detail == f"id must be a positive integer up to {MAX_ID}"


def test_path_id_400_when_the_parameter_is_missing() -> None:
    assert raised(lambda: path_id({}, "user_id")).detail == (
        f"user_id must be a positive integer up to {MAX_ID}"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, 20),
        ({"limit": ""}, 20),
        ({"limit": "1"}, 1),
        ({"limit": "100"}, 100),
        ({"limit": "37"}, 37),
    ],
)
def test_query_int_within_bounds(query: dict[str, str], expected: int) -> None:
    assert query_int(query, "limit", default=20, minimum=1, maximum=100) == expected


def test_query_int_accepts_negative_values_when_allowed() -> None:
    assert query_int({"delta": "-5"}, "delta", default=0, minimum=-10, maximum=10) == -5


@pytest.mark.parametrize("raw", ["0", "101", "-1", "abc", "1.5", " 5", "+5", "9" * 20, "9" * 5000])
def test_query_int_400_outside_bounds(raw: str) -> None:
    error = raised(lambda: query_int({"limit": raw}, "limit", default=20, minimum=1, maximum=100))

    assert error.status == 400
    assert error.detail == "limit must be an integer from 1 to 100"


# -- the users service rules --------------------------------------------------------------------


def problems(body: dict[str, Any]) -> list[dict[str, str]]:
    error = raised(lambda: validate_new_user(body))
    assert error.status == 422
    assert error.detail == "the user is not valid"
    errors = error.to_problem()["errors"]
    assert isinstance(errors, list)
    return errors


def test_valid_user_is_cleaned() -> None:
    assert validate_new_user({"name": "  Ada Lovelace \t", "email": " Ada@Example.COM "}) == (
        "Ada Lovelace",
        "ada@example.com",
    )


def test_name_may_be_exactly_the_maximum_and_non_ascii() -> None:
    name = "\u00e9" * NAME_MAX
    assert validate_new_user({"name": name, "email": "a@b.io"}) == (name, "a@b.io")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "required, a string"),
        (42, "required, a string"),
        (["Ada"], "required, a string"),
        ("", f"1 to {NAME_MAX} characters"),
        ("   ", f"1 to {NAME_MAX} characters"),
        ("x" * (NAME_MAX + 1), f"1 to {NAME_MAX} characters"),
        ("Ada\nLovelace", "no control characters"),
        ("Ada\x00", "no control characters"),
        ("Ada\x1b[31m", "no control characters"),
        ("Ada\u202eecalevol", "no control characters"),
    ],
)
def test_bad_names(name: Any, message: str) -> None:
    assert problems({"name": name, "email": "ada@example.com"}) == [
        {"field": "name", "message": message}
    ]


@pytest.mark.parametrize(
    "email",
    [
        None,
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@exa\nmple.com",
        "ada\r\n@example.com",
        "ad\u00e1@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".io",
    ],
)
def test_bad_emails(email: Any) -> None:
    message = "required, a string" if email is None else "a valid e-mail address"
    assert problems({"name": "Ada", "email": email}) == [{"field": "email", "message": message}]


def test_email_length_limit() -> None:
    local = "x" * 64
    fits = f"{local}@{'d' * (EMAIL_MAX - 64 - 1 - 3)}.io"
    assert len(fits) == EMAIL_MAX
    assert validate_new_user({"name": "Ada", "email": fits}) == ("Ada", fits)
    too_long = f"{local}@{'d' * (EMAIL_MAX - 64 - 3)}.io"
    assert problems({"name": "Ada", "email": too_long}) == [
        {"field": "email", "message": "a valid e-mail address"}
    ]


def test_every_problem_is_listed_at_once() -> None:
    assert problems({"name": "", "email": "nope"}) == [
        {"field": "name", "message": f"1 to {NAME_MAX} characters"},
        {"field": "email", "message": "a valid e-mail address"},
    ]
    assert problems({}) == [
        {"field": "name", "message": "required, a string"},
        {"field": "email", "message": "required, a string"},
    ]
