"""MediaStore: content addressing, sharding, and refusal of paths outside the root."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from storage.media_store import MediaStore


def test_same_bytes_same_path(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"\x89PNG fake sticker"
    first = store.save(data, "PNG")
    assert store.save(data, "png") == first
    digest = hashlib.sha256(data).hexdigest()
    assert first == store.root / digest[:2] / digest[2:4] / f"{digest}.png"
    assert first.is_absolute() and first.read_bytes() == data
    other = store.save(b"another sticker", "webp")
    assert other != first and other.suffix == ".webp"
    with store.open(first) as f:
        assert f.read() == data
    relative = first.relative_to(store.root)
    with store.open(relative) as f:
        assert f.read() == data
    assert not list(store.root.rglob(".incoming-*"))


def test_bad_formats_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    for fmt in ("", "../png", "p/ng", "x" * 20):
        with pytest.raises(ValueError):
            store.save(b"x", fmt)


def test_paths_outside_root_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    outside = tmp_path / "secret.txt"
    outside.write_text("keep me")
    kept = store.save(b"kept", "png")
    for bad in (outside, "../secret.txt", store.root / ".." / "secret.txt", store.root):
        with pytest.raises(ValueError):
            store.open(bad)
        with pytest.raises(ValueError):
            store.delete([kept, bad])  # one bad path: nothing is deleted
    link = store.root / "link.png"
    link.symlink_to(outside)
    with pytest.raises(ValueError):
        store.open(link)
    assert outside.read_text() == "keep me" and kept.is_file()


def test_delete(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    a, b = store.save(b"a", "png"), store.save(b"b", "png")
    assert store.delete([a, str(a)]) == 1  # a path listed twice counts once
    assert not a.exists() and not a.parent.exists()  # emptied shard folders go too
    assert b.is_file() and store.root.is_dir()
    assert store.delete([]) == 0
    assert store.save(b"a", "png") == a and a.is_file()  # and can be stored again
