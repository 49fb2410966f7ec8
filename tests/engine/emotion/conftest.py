from __future__ import annotations

import pytest

from engine.embeddings import TextEncoder
from engine.emotion import EmotionClassifier


@pytest.fixture(scope="session")
def encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="session")
def classifier(encoder: TextEncoder) -> EmotionClassifier:
    return EmotionClassifier.load(encoder)
