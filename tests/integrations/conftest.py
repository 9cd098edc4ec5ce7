"""The store fixtures of ``tests/stores``: every integration runs on each engine."""

from tests.stores.conftest import make_store, pg_schema, pg_url, store, store_kind

__all__ = ["make_store", "pg_schema", "pg_url", "store", "store_kind"]
