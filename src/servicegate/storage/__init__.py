"""Storage: engine, tables, migrations and repositories (SQLite and PostgreSQL)."""
