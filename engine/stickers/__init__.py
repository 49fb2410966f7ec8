"""The sticker library (STICKERCONV metadata + images), its default emoji pack and
its faiss index."""

from engine.stickers.build import (
    DEFAULT_LICENSE,
    DEFAULT_PACK,
    ImportReport,
    build_default_pack,
    import_folder,
    read_metadata,
)
from engine.stickers.fingerprint import MATCH_THRESHOLD
from engine.stickers.index import HNSW_THRESHOLD, StickerIndex
from engine.stickers.library import LibraryMissingError, Sticker, StickerLibrary
from engine.stickers.render import EmojiRenderError, emoji_id, render_emoji, render_twemoji

__all__ = [
    "DEFAULT_LICENSE", "DEFAULT_PACK", "HNSW_THRESHOLD", "MATCH_THRESHOLD",
    "EmojiRenderError", "ImportReport", "LibraryMissingError", "Sticker", "StickerIndex",
    "StickerLibrary", "build_default_pack", "emoji_id", "import_folder", "read_metadata",
    "render_emoji", "render_twemoji",
]
