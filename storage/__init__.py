"""Persistence: SQL models and migrations, conversation memory, media files, transcripts."""
