"""The tests' throwaway PostgreSQL server: the same code as `sopflow up --postgres` (sopflow/pg_local.py)."""

from sopflow.pg_local import create_database, postgres_available, postgres_server

__all__ = ["create_database", "postgres_available", "postgres_server"]
