"""Alembic migrations of the case service (run with backline.storage.db.upgrade)."""
