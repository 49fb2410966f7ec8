"""The sticker library: STICKERCONV-style metadata plus the image files on disk.

Layout of a library directory:
    library.jsonl        one Sticker per line
    <pack>/<id>.png      the sticker as PNG (Discord, web chat)
    <pack>/<id>.webp     the sticker as 512 px WEBP (Telegram sendSticker)
    fingerprints.npz     perceptual fingerprints for recognising copies (match_image)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from engine.media import STICKER_SIZE, WEBP_MAX_BYTES, encode_webp, fit_square
from engine.stickers import fingerprint as fp
from engine.types import Emotion

LIBRARY_FILE = "library.jsonl"
FINGERPRINT_FILE = "fingerprints.npz"


class LibraryMissingError(FileNotFoundError):
    """No library.jsonl where one was expected."""


class Sticker(BaseModel):
    id: str
    pack: str
    emoji: str | None = None
    name: str
    emotion: Emotion
    emotion_description: str
    content_description: str
    recommendation: str
    license: str = "unknown"
    png_path: str = ""  # relative to the library directory
    webp_path: str = ""

    def text(self) -> str:
        """The text embedded for retrieval."""
        return (f"{self.name}. {self.content_description} {self.emotion_description} "
                f"{self.recommendation} Emotion: {self.emotion.value}.")


def safe_id(text: str) -> str:
    """A filesystem-safe id fragment: lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or hashlib.sha1(text.encode()).hexdigest()[:12]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _is_sticker_shaped(image: Image.Image) -> bool:
    """Already what fit_square makes (a rendered emoji): skip a needless resample."""
    if image.mode != "RGBA" or image.size != (STICKER_SIZE, STICKER_SIZE):
        return False
    box = image.getchannel("A").getbbox()
    return box is not None and (box[2] - box[0] == STICKER_SIZE
                                or box[3] - box[1] == STICKER_SIZE)


def _write_images(square: Image.Image, png: Path, webp: Path) -> None:
    # Faster settings than engine.media's encoders (a pack build writes hundreds);
    # fall back to encode_webp, which steps quality down to Telegram's 512 KB cap.
    square.save(png, "PNG", compress_level=3)
    buf = io.BytesIO()
    square.save(buf, "WEBP", quality=90, method=1)
    data = buf.getvalue()
    webp.write_bytes(data if len(data) <= WEBP_MAX_BYTES else encode_webp(square))


class StickerLibrary:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._stickers: dict[str, Sticker] = {}
        self._colour = np.zeros((0, fp.THUMB_SIDE, fp.THUMB_SIDE, 3), dtype=np.float32)
        self._clear = np.zeros((0, fp.THUMB_SIDE, fp.THUMB_SIDE), dtype=np.float32)
        self._print_ids: list[str] = []
        self._feature_cache: dict[bytes, np.ndarray] = {}

    # --- persistence ---------------------------------------------------------
    @classmethod
    def load(cls, root: Path) -> StickerLibrary:
        lib = cls(root)
        path = lib.root / LIBRARY_FILE
        if not path.exists():
            raise LibraryMissingError(
                f"no sticker library at {path}: run `stickerbot stickers build` first")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                sticker = Sticker.model_validate_json(line)
                lib._stickers[sticker.id] = sticker
        lib._load_prints()
        return lib

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lines = "".join(s.model_dump_json() + "\n" for s in self._stickers.values())
        _atomic_write(self.root / LIBRARY_FILE, lines.encode("utf-8"))
        self._sync_prints()
        tmp = self.root / ("tmp-" + FINGERPRINT_FILE)
        np.savez(tmp, ids=np.array(self._print_ids, dtype=str),
                 colour=self._colour.astype(np.float16), clear=self._clear.astype(np.float16))
        os.replace(tmp, self.root / FINGERPRINT_FILE)

    def digest(self) -> str:
        """Changes whenever a sticker is added, removed or re-described."""
        h = hashlib.sha256()
        for s in self._stickers.values():
            h.update(s.model_dump_json().encode("utf-8"))
        return h.hexdigest()

    # --- container -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self._stickers)

    def __iter__(self) -> Iterator[Sticker]:
        return iter(list(self._stickers.values()))

    def __contains__(self, sticker_id: object) -> bool:
        return sticker_id in self._stickers

    def get(self, sticker_id: str) -> Sticker:
        try:
            return self._stickers[sticker_id]
        except KeyError:
            raise KeyError(f"unknown sticker id {sticker_id!r}") from None

    def ids(self) -> list[str]:
        return list(self._stickers)

    def png_file(self, sticker_id: str) -> Path:
        return self.root / self.get(sticker_id).png_path

    def webp_file(self, sticker_id: str) -> Path:
        return self.root / self.get(sticker_id).webp_path

    def by_emotion(self, emotion: Emotion) -> list[Sticker]:
        return [s for s in self._stickers.values() if s.emotion == emotion]

    def add(self, sticker: Sticker, image: Image.Image) -> Sticker:
        """Store (or replace) a sticker and its image; returns it with its file paths."""
        folder = self.root / safe_id(sticker.pack)
        folder.mkdir(parents=True, exist_ok=True)
        square = image if _is_sticker_shaped(image) else fit_square(image, STICKER_SIZE)
        png, webp = folder / f"{sticker.id}.png", folder / f"{sticker.id}.webp"
        _write_images(square, png, webp)
        stored = sticker.model_copy(update={
            "png_path": png.relative_to(self.root).as_posix(),
            "webp_path": webp.relative_to(self.root).as_posix(),
        })
        self._stickers[stored.id] = stored
        self._set_print(stored.id, fp.sticker_print(square))
        return stored

    # --- near-duplicate lookup -----------------------------------------------
    def match_image(self, image: Image.Image,
                    threshold: float = fp.MATCH_THRESHOLD) -> tuple[Sticker, float] | None:
        """The library sticker that `image` is a copy of (re-encoded, resized), if any."""
        best = self.similar_images(image, k=1)
        if not best or best[0][1] < threshold:
            return None
        return best[0]

    def similar_images(self, image: Image.Image, k: int = 5) -> list[tuple[Sticker, float]]:
        """The k stickers that look most like `image`, with fingerprint similarity."""
        self._sync_prints()
        if not self._print_ids:
            return []
        scores = fp.similarities(self._colour, self._clear, image, self._feature_cache)
        order = np.argsort(-scores)[:k]
        return [(self._stickers[self._print_ids[i]], float(scores[i])) for i in order]

    def _set_print(self, sticker_id: str, p: fp.StickerPrint) -> None:
        self._feature_cache.clear()
        if sticker_id in self._print_ids:
            i = self._print_ids.index(sticker_id)
            self._colour[i], self._clear[i] = p.colour, p.clear
            return
        self._print_ids.append(sticker_id)
        self._colour = np.concatenate([self._colour, p.colour[None]])
        self._clear = np.concatenate([self._clear, p.clear[None]])

    def _load_prints(self) -> None:
        path = self.root / FINGERPRINT_FILE
        if path.exists():
            with np.load(path) as data:
                self._print_ids = [str(i) for i in data["ids"]]
                self._colour = data["colour"].astype(np.float32)
                self._clear = data["clear"].astype(np.float32)
            self._feature_cache.clear()
        self._sync_prints()

    def _sync_prints(self) -> None:
        """Drop prints of removed stickers; compute missing ones from the PNG files."""
        keep = [i for i, sid in enumerate(self._print_ids) if sid in self._stickers]
        if len(keep) != len(self._print_ids):
            self._print_ids = [self._print_ids[i] for i in keep]
            self._colour, self._clear = self._colour[keep], self._clear[keep]
            self._feature_cache.clear()
        known = set(self._print_ids)
        for sid, sticker in self._stickers.items():
            if sid not in known and (self.root / sticker.png_path).is_file():
                with Image.open(self.root / sticker.png_path) as img:
                    self._set_print(sid, fp.sticker_print(img))

