"""The database proxy: HTTP CRUD over SQLite or PostgreSQL, each statement a span."""
