"""The default pack is built once per session with the real MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.embeddings import TextEncoder
from engine.stickers import StickerIndex, StickerLibrary, build_default_pack


@pytest.fixture(scope="session")
def encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="session")
def pack_root(tmp_path_factory: pytest.TempPathFactory, encoder: TextEncoder) -> Path:
    root = tmp_path_factory.mktemp("stickers")
    build_default_pack(root, encoder, show_progress=False)
    return root


@pytest.fixture(scope="session")
def library(pack_root: Path) -> StickerLibrary:
    return StickerLibrary.load(pack_root)


@pytest.fixture(scope="session")
def index(pack_root: Path, library: StickerLibrary, encoder: TextEncoder) -> StickerIndex:
    return StickerIndex.load(pack_root, library, encoder)
