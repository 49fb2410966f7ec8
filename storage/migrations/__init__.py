"""Alembic migrations for the StickerBot schema."""
