"""Deleting everything stored about one person, the one code path behind Telegram's and
Discord's /forget and the review dashboard's "delete this user's data".

TranscriptStore.forget_user deletes the rows (messages, conversations, deliveries, the
user) and the Redis memory cache; this also deletes the media files only they sent.
"""

from __future__ import annotations

import logging

from storage.media_store import MediaStore
from storage.transcript import TranscriptStore

log = logging.getLogger(__name__)


def forget_person(transcripts: TranscriptStore, media_store: MediaStore, platform: str,
                  user_id: str) -> int:
    """Delete the person's data; returns how many media files were removed.

    Paths outside the media store (a library sticker the person picked in the web chat
    is recorded by its library path) are not theirs to delete and are left alone.
    """
    paths = transcripts.forget_user(platform, user_id)
    own = []
    for path in paths:
        try:
            media_store.resolve(path)
        except ValueError:
            continue
        own.append(path)
    return media_store.delete(own)
