"""The three demo services: ``gateway`` -> ``users`` -> ``db``."""
