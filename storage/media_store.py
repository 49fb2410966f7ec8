"""Content-addressed storage for the pictures people send.

A file's path is derived from the sha256 of its bytes (root/ab/cd/<digest>.<fmt>), so the
same sticker sent a thousand times is stored once. Every path handed in is checked to lie
inside the root before anything is read or deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

_FORMAT = re.compile(r"^[a-z0-9]{1,10}$")


class MediaStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, data: bytes, fmt: str) -> Path:
        fmt = fmt.lower().lstrip(".")
        if not _FORMAT.match(fmt):
            raise ValueError(f"unsupported media format {fmt!r}")
        digest = hashlib.sha256(data).hexdigest()
        return self.root / digest[:2] / digest[2:4] / f"{digest}.{fmt}"

    def save(self, data: bytes, fmt: str) -> Path:
        """Store the bytes (once) and return their absolute path."""
        path = self.path_for(data, fmt)
        if path.is_file():
            return path
        # Write then rename: a concurrent reader never sees a half-written file.
        fd, tmp = self._temp_file(path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @staticmethod
    def _temp_file(folder: Path) -> tuple[int, str]:
        # A concurrent delete() may remove an emptied shard folder between mkdir and
        # mkstemp: make it again and retry.
        for _ in range(3):
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(dir=folder, prefix=".incoming-")
            except FileNotFoundError:
                continue
        raise OSError(f"could not create a file in {folder}")

    def resolve(self, path: Path | str) -> Path:
        """The absolute path inside the root; ValueError for anything outside it."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise ValueError(f"{path} is outside the media store")
        return resolved

    def open(self, path: Path | str) -> BinaryIO:
        """Open a stored file for reading (binary)."""
        return self.resolve(path).open("rb")

    def delete(self, paths: Iterable[Path | str]) -> int:
        """Delete stored files; returns how many existed.

        All paths are checked first, so one bad path deletes nothing.
        """
        resolved = [self.resolve(p) for p in paths]
        removed = 0
        for p in resolved:
            try:
                p.unlink()
                removed += 1
            except FileNotFoundError:
                continue
            # Tidy empty shard folders, never the root itself.
            for parent in (p.parent, p.parent.parent):
                if parent == self.root:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
        return removed
