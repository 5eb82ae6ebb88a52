"""What makes a user valid. The one place these rules live."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from cello_problem import HTTPError

NAME_MAX = 100
EMAIL_MAX = 254
# Deliberately plain: one @, a dot in the domain, no spaces or control characters.
# Whether an address really receives mail is for a confirmation e-mail to find out.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def validate_new_user(body: dict[str, Any]) -> tuple[str, str]:
    """The cleaned ``(name, email)`` of a new user, or 422 listing every problem."""
    name, name_error = _name(body.get("name"))
    email, email_error = _email(body.get("email"))
    errors = [
        {"field": field, "message": message}
        for field, message in (("name", name_error), ("email", email_error))
        if message
    ]
    if errors:
        raise HTTPError(422, "the user is not valid", extra={"errors": errors})
    return name, email


def _name(value: object) -> tuple[str, str | None]:
    if not isinstance(value, str):
        return "", "required, a string"
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        return name, f"1 to {NAME_MAX} characters"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return name, "no control characters"
    return name, None


def _email(value: object) -> tuple[str, str | None]:
    if not isinstance(value, str):
        return "", "required, a string"
    # Addresses are compared case-insensitively, so "A@x.io" and "a@x.io" collide.
    email = value.strip().lower()
    if len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email):
        return email, "a valid e-mail address"
    return email, None
