"""Training and scoring of the cpu-small sticker encoder: the contrastive loss, the
committed weights against baselines on held-out stickers, and a short training run."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from engine.pegs.sticker_encoder import DEFAULT_WEIGHTS, StickerEncoder, read_report
from tests.engine.pegs.pegs_support import one_thread
from training.sticker_encoder.train import (
    HeldoutSet,
    build_pairs,
    clip_loss,
    heldout_split,
    train_encoder,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_thread()


def test_clip_loss_counts_repeated_stickers_as_positives() -> None:
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    ids = torch.tensor([0, 1, 0, 2])
    texts = emb.clone()
    texts[2] = texts[0]  # the same sticker twice: the same target
    perfect = clip_loss(texts, texts, ids, torch.tensor(np.log(100.0)))
    shuffled = clip_loss(emb, texts[[3, 0, 1, 2]], ids, torch.tensor(np.log(100.0)))
    assert float(perfect) < float(shuffled)


# --- the default pack (slow: builds the pack and loads MiniLM) ------------------------


@pytest.mark.slow
def test_committed_weights_beat_chance_and_random_init(library, encoder) -> None:
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000
    model = StickerEncoder.load()
    report = read_report()
    heldout_ids = [s.id for s in heldout_split(list(library))[1]]
    assert heldout_ids == report["training"]["heldout_ids"], (
        "the default pack changed since training: run python -m training.sticker_encoder.train")

    evaluation = HeldoutSet.from_library(library, encoder, heldout_ids)
    torch.manual_seed(0)
    trained, random_init = evaluation.metrics(model), evaluation.metrics(StickerEncoder().eval())
    for part in ("heldout", "library"):
        chance = trained[f"chance_{part}"]["top10"]
        top10 = trained[part]["top10"]
        assert top10 >= chance + MARGIN[part], (part, top10, chance)
        assert top10 >= random_init[part]["top10"] + MARGIN[part], (part, top10, random_init)


# Measured (engine/pegs/sticker_encoder.json): top-10 0.875 held-out / 0.375 library,
# against chance 0.25 / 0.05 and random init 0.225 / 0.05; margins sit well inside.
MARGIN = {"heldout": 0.3, "library": 0.15}


@pytest.mark.slow
def test_a_short_training_run_lowers_the_loss(library, encoder) -> None:
    train, _ = heldout_split(list(library))
    pairs = build_pairs(train[::20][:8], library, encoder, extras=[], progress=False)
    torch.manual_seed(0)
    model = StickerEncoder()
    history = train_encoder(model, pairs, epochs=12, batch_size=8, lr=3e-3, seed=0,
                            progress=False)
    assert len(history) == 12
    assert np.mean(history[-3:]) < 0.8 * history[0], history
    assert not model.training
