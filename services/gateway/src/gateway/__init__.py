"""The API gateway: the public API, which forwards to the users service."""
