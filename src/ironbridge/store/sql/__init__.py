"""The registry on SQLAlchemy 2 and Alembic: SQLite (embedded) or PostgreSQL (cluster)."""

from ironbridge.store.sql.bootstrap import bootstrap_admin, ensure_root
from ironbridge.store.sql.engine import make_engine, migrate
from ironbridge.store.sql.registry import SqlRegistry
from ironbridge.store.sql.yamlio import ImportReport, export_yaml, import_yaml

__all__ = [
    "ImportReport",
    "SqlRegistry",
    "bootstrap_admin",
    "ensure_root",
    "export_yaml",
    "import_yaml",
    "make_engine",
    "migrate",
]
