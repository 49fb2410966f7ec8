"""Building the default emoji pack and importing folders of stickers."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from engine.embeddings import TextEncoder
from engine.media import MediaError, decode_file
from engine.stickers.index import StickerIndex
from engine.stickers.library import (
    LibraryMissingError,
    Sticker,
    StickerLibrary,
    safe_id,
)
from engine.stickers.render import emoji_id, render_emoji, render_twemoji
from engine.types import Emotion

log = logging.getLogger(__name__)

DEFAULT_PACK_FILE = Path(__file__).with_name("default_pack.json")
# The pack's name is also its folder: logged sessions name files "noto-emoji/<id>.png",
# so it stays whichever artwork draws it.
DEFAULT_PACK = "noto-emoji"
NOTO_LICENSE = "OFL-1.1 (Noto Color Emoji)"
TWEMOJI_LICENSE = "CC-BY-4.0 (Twemoji 15.0.0 by Twitter, Inc. and other contributors)"
# What build_default_pack draws without Twemoji SVGs (the bot's default art is Twemoji:
# settings.sticker_art).
DEFAULT_LICENSE = NOTO_LICENSE
IMPORT_SUFFIXES = frozenset({".png", ".webp", ".jpg", ".jpeg", ".gif", ".tgs", ".webm"})
_TEXT_FIELDS = ("emotion_description", "content_description", "recommendation")


def default_pack_entries(path: Path = DEFAULT_PACK_FILE) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def open_or_create(root: Path) -> StickerLibrary:
    try:
        return StickerLibrary.load(root)
    except LibraryMissingError:
        return StickerLibrary(root)


def build_default_pack(root: Path, encoder: TextEncoder, *, twemoji_dir: Path | None = None,
                       show_progress: bool = True) -> StickerLibrary:
    """Render every default-pack emoji into `root`, save the library and its index: from
    the Twemoji SVGs in `twemoji_dir` (crisp vector art), or from Noto Color Emoji's
    136 px bitmaps when it is None (STICKERBOT_STICKER_ART).

    Re-running replaces the same ids, so nothing is duplicated; stickers drawn from other
    artwork before (another license) are rendered again.
    """
    library = open_or_create(root)
    entries = default_pack_entries()
    for entry in tqdm(entries, desc="rendering stickers", unit="sticker",
                      disable=not show_progress):
        sticker = Sticker(id=emoji_id(entry["emoji"]), pack=DEFAULT_PACK,
                          license=TWEMOJI_LICENSE if twemoji_dir else NOTO_LICENSE, **entry)
        if not _up_to_date(library, sticker):
            library.add(sticker, render_twemoji(entry["emoji"], twemoji_dir) if twemoji_dir
                        else render_emoji(entry["emoji"]))
    library.save()
    StickerIndex.load(library.root, library, encoder)  # rebuilds only if something changed
    return library


def _up_to_date(library: StickerLibrary, sticker: Sticker) -> bool:
    """Already stored with the same metadata and both files present."""
    if sticker.id not in library:
        return False
    stored = library.get(sticker.id)
    paths = {"png_path", "webp_path"}
    return (stored.model_dump(exclude=paths) == sticker.model_dump(exclude=paths)
            and library.png_file(sticker.id).is_file()
            and library.webp_file(sticker.id).is_file())


def read_metadata(path: Path) -> dict[str, dict]:
    """Metadata keyed by file name, from JSON (a list, or an object keyed by file
    name), JSONL or CSV; list rows name their file in `file` (or `file_name`)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows: list[dict] = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
        if isinstance(data, dict):
            return {str(k): dict(v) for k, v in data.items()}
        rows = list(data)
    keyed = {}
    for row in rows:
        name = row.get("file") or row.get("file_name") or row.get("filename")
        if not name:
            raise ValueError(f"{path}: a metadata row names no file: {row}")
        keyed[str(name)] = row
    return keyed


def _name_from_file(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").replace("-", " ").split()) or path.stem


def _sticker_for(path: Path, pack: str, license: str, meta: dict | None,
                 emotion_of: Callable[[str], Emotion] | None) -> Sticker:
    name = str((meta or {}).get("name") or _name_from_file(path))
    if meta and meta.get("emotion"):
        emotion = Emotion(str(meta["emotion"]).strip().lower())
    elif emotion_of is not None:
        emotion = Emotion(emotion_of(name))
    else:
        emotion = Emotion.neutral
    texts = {f: str((meta or {}).get(f) or "") for f in _TEXT_FIELDS}
    # Without descriptions the name is all retrieval has: make it say something.
    texts["content_description"] = texts["content_description"] or f"A sticker: {name}."
    texts["emotion_description"] = (texts["emotion_description"]
                                    or f"It shows {emotion.value}.")
    texts["recommendation"] = (texts["recommendation"]
                               or f"Use it to express {emotion.value} about {name}.")
    emoji = (meta or {}).get("emoji") or None
    return Sticker(id=f"{safe_id(pack)}-{safe_id(path.stem)}", pack=pack, emoji=emoji,
                   name=name, emotion=emotion, license=str((meta or {}).get("license")
                                                          or license), **texts)


class ImportReport(list):
    """The imported stickers (a list), plus `skipped`: (file, reason) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[tuple[Path, str]] = []


def import_folder(root: Path, folder: Path, encoder: TextEncoder, *, pack: str,
                  metadata: Path | None = None,
                  emotion_of: Callable[[str], Emotion] | None = None,
                  license: str = "unknown") -> list[Sticker]:
    """Add every sticker image in `folder` to the library at `root`, then rebuild
    the index. Unreadable files are skipped with a warning and listed in the
    returned list's `skipped` attribute."""
    library = open_or_create(root)
    meta = read_metadata(metadata) if metadata else {}
    report = ImportReport()
    files = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMPORT_SUFFIXES)
    for path in files:
        try:
            decoded = decode_file(path)
        except (MediaError, OSError) as exc:
            reason = getattr(exc, "user_message", None) or str(exc)
            log.warning("skipping %s: %s", path, reason)
            report.skipped.append((path, reason))
            continue
        entry = meta.get(path.name) or meta.get(path.stem)
        try:
            sticker = _sticker_for(path, pack, license, entry, emotion_of)
        except ValueError as exc:  # e.g. an emotion outside the 7 classes
            log.warning("skipping %s: bad metadata: %s", path, exc)
            report.skipped.append((path, f"bad metadata: {exc}"))
            continue
        report.append(library.add(sticker, decoded.image))
    library.save()
    StickerIndex.build(library, encoder).save(library.root)
    return report
