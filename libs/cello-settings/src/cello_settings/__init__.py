"""Typed settings from the environment: readers for a service's ``settings.py``.

Each service declares its values with these readers, every one with a default::

    from cello_settings import env_float, env_url, port

    users_url = env_url("USERS_SERVICE_URL", "http://127.0.0.1:8001")

A bad value raises :class:`ConfigError` with a message that names the variable, so the
service stops at start-up instead of failing on its first request.
"""

from .env import ConfigError, env_flag, env_float, env_int, env_str, env_url, host, port

__all__ = ["ConfigError", "env_flag", "env_float", "env_int", "env_str", "env_url", "host", "port"]
