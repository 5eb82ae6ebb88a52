"""The readers: one variable each, with a default and a range or a form."""

from __future__ import annotations

import os
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting from the environment is missing or malformed."""


def env_str(name: str, default: str) -> str:
    """``name`` from the environment, or ``default`` when unset or empty."""
    return os.environ.get(name) or default


def env_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    """An integer within ``[minimum, maximum]``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} must be between {minimum} and {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    """A number within ``[minimum, maximum]``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} must be between {minimum} and {maximum}")
    return value


def env_flag(name: str, default: bool) -> bool:
    """A switch: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be 1 or 0 (or true/false, yes/no, on/off)")


def env_url(name: str, default: str) -> str:
    """An ``http(s)://host[:port]`` base URL, without a trailing slash."""
    raw = env_str(name, default)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={raw!r} must be a URL such as http://127.0.0.1:8001")
    return raw.rstrip("/")


def port(default: int) -> int:
    """``PORT``: the TCP port this service listens on."""
    return env_int("PORT", default, minimum=1, maximum=65535)


def host() -> str:
    """``HOST``: the address to bind; loopback unless a container says otherwise."""
    return env_str("HOST", "127.0.0.1")
