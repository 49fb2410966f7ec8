"""Content-addressed storage for the pictures people send.

A file's path is derived from the sha256 of its bytes (root/ab/cd/<digest>.<fmt>), so the
same sticker sent a thousand times is stored once. Every path handed in is checked to lie
inside the root before anything is read or deleted.

Because a file is shared, one person's /forget (or the retention purge) could delete a
picture another person is sending right now, before any row refers to it. A turn in
flight therefore holds a lease on its file: a marker file beside it
("<name>.<random>.lease"), seen by every process on the volume, that `delete` respects.
A marker left by a killed process stops counting after LEASE_S.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_FORMAT = re.compile(r"^[a-z0-9]{1,10}$")
LEASE_SUFFIX = ".lease"
LEASE_S = 3600.0  # longer than any turn waits for its reply


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
            with contextlib.suppress(OSError):
                os.utime(path)  # sent again now: the retention grace counts from now
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

    @contextmanager
    def lease(self, path: Path | str) -> Iterator[Path]:
        """Keep `path` from `delete` while the block runs (take it before saving)."""
        target = self.resolve(path)
        marker = target.with_name(f"{target.name}.{uuid.uuid4().hex}{LEASE_SUFFIX}")
        fd, tmp = self._temp_file(target.parent)
        os.close(fd)
        os.replace(tmp, marker)
        try:
            yield target
        finally:
            marker.unlink(missing_ok=True)

    @staticmethod
    def is_live_lease(path: Path, now: float | None = None) -> bool:
        """A lease marker younger than LEASE_S."""
        if not path.name.endswith(LEASE_SUFFIX):
            return False
        try:
            return path.stat().st_mtime > (time.time() if now is None else now) - LEASE_S
        except OSError:
            return False

    def leased(self, path: Path) -> bool:
        pattern = glob.escape(str(path)) + ".*" + LEASE_SUFFIX
        return any(self.is_live_lease(Path(m)) for m in glob.glob(pattern))

    def delete(self, paths: Iterable[Path | str]) -> int:
        """Delete stored files, except leased ones; returns how many were deleted.

        All paths are checked first, so one bad path deletes nothing.
        """
        resolved = [self.resolve(p) for p in paths]
        removed = 0
        for p in resolved:
            if self.leased(p):
                continue
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
