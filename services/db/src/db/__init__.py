"""The database proxy: HTTP CRUD over SQLite, each statement a span."""
