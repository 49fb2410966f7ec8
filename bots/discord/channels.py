"""Server channels where an admin asked the bot to answer every message (/channel enable).

Kept in the `enabled_channels` table, read once into memory and written through.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from storage.db import Database
from storage.models import EnabledChannel, utcnow
from storage.queries import insert_ignore

PLATFORM = "discord"


class EnabledChannels:
    def __init__(self, db: Database, platform: str = PLATFORM) -> None:
        self.db = db
        self.platform = platform
        self._ids: set[str] | None = None

    def _load(self) -> set[str]:
        if self._ids is None:
            with self.db.session() as s:
                self._ids = set(s.execute(select(EnabledChannel.channel_id).where(
                    EnabledChannel.platform == self.platform)).scalars())
        return self._ids

    def __contains__(self, channel_id: object) -> bool:
        return str(channel_id) in self._load()

    def enable(self, channel_id: str, guild_id: str | None, by: str) -> bool:
        """True when it was not enabled before."""
        with self.db.session() as s:
            row = {"platform": self.platform, "channel_id": channel_id, "guild_id": guild_id,
                   "enabled_by": by, "created_at": utcnow()}
            added = insert_ignore(s, EnabledChannel.__table__, row,  # type: ignore[arg-type]
                                  ["platform", "channel_id"]) is not None
        self._load().add(channel_id)
        return added

    def disable(self, channel_id: str) -> bool:
        """True when it was enabled."""
        with self.db.session() as s:
            removed = s.execute(delete(EnabledChannel).where(
                EnabledChannel.platform == self.platform,
                EnabledChannel.channel_id == channel_id)).rowcount
        self._load().discard(channel_id)
        return bool(removed)
