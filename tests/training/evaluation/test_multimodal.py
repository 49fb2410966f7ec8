"""f-MMr against the paper's Table 2, and MM-Relevance in the MiniLM-sticker space."""

from __future__ import annotations

import pytest

from training.evaluation.items import EvalItem
from training.evaluation.multimodal import (
    PAPER_EQ11_ALPHA,
    StickerImages,
    f_mmr,
    multimodal_metrics,
    sticker_frequency,
)

# (MMr, Freq, f-MMr) of the paper's Table 2, all five rows (../shared/PAPER_TABLES.md).
TABLE2 = [
    ("Vicuna-tool", 0.725, 0.141, 0.602),
    ("ChatGLM3-tool", 0.659, 0.905, 0.647),
    ("PEGS-Ret", 0.674, 0.850, 0.653),
    ("PEGS-RAG", 0.680, 0.847, 0.659),
    ("PEGS-Gen", 0.672, 0.811, 0.647),
]


@pytest.mark.parametrize(("name", "mmr", "freq", "expected"), TABLE2)
def test_f_mmr_reproduces_table2(name, mmr, freq, expected):
    assert f_mmr(mmr, freq) == pytest.approx(expected, abs=0.002)


def test_f_mmr_algebra_and_eq11_discrepancy():
    assert f_mmr(0.7, 1.0) == pytest.approx(0.7)           # always a sticker: no discount
    assert f_mmr(0.7, 0.0) == pytest.approx(0.7 * 0.8)     # never: the full 0.2 penalty
    assert f_mmr(0.7, 0.5, penalty=0.0) == pytest.approx(0.7)
    # Eq. 11 as printed (alpha = 0.8) gives 0.227 for Vicuna-tool, far from the table's 0.602.
    assert f_mmr(0.725, 0.141, penalty=PAPER_EQ11_ALPHA) == pytest.approx(0.227, abs=0.001)
    assert f_mmr(0.6, 0.3) < f_mmr(0.6, 0.9)
    with pytest.raises(ValueError):
        f_mmr(0.5, 1.5)


def _item(i, text, sticker=None):
    return EvalItem(item_id=str(i), system="s", context=[], text=text, sticker_id=sticker)


def test_sticker_frequency():
    items = [_item(0, "a", "x"), _item(1, "b"), _item(2, "c"), _item(3, "d", "y")]
    assert sticker_frequency(items) == 0.5
    assert sticker_frequency([]) == 0.0


@pytest.fixture(scope="module")
def images(library):
    from engine.pegs.sticker_encoder import StickerEncoder

    return StickerImages(StickerEncoder.load(), library)


def test_mm_relevance_prefers_fitting_stickers(library, encoder, images):
    happy = [s.id for s in library.by_emotion("happiness")][:8]
    sad = [s.id for s in library.by_emotion("sadness")][:8]
    happy_text = "That is wonderful news, I am so happy and excited for you!"
    sad_text = "I am so sorry, that is really sad. I am here for you."
    fit = [_item(i, happy_text, s) for i, s in enumerate(happy)]
    fit += [_item(i, sad_text, s) for i, s in enumerate(sad)]
    misfit = [_item(i, sad_text, s) for i, s in enumerate(happy)]
    misfit += [_item(i, happy_text, s) for i, s in enumerate(sad)]
    good = multimodal_metrics(fit + [_item(99, "ok")], encoder, images)
    bad = multimodal_metrics(misfit, encoder, images)
    assert good["mmr"] > bad["mmr"]
    assert good["freq"] == pytest.approx(16 / 17)
    assert good["f_mmr"] == pytest.approx(f_mmr(good["mmr"], good["freq"]))
    assert 0 <= bad["mmr"] <= 1
    none = multimodal_metrics([_item(0, "plain text")], encoder, images)
    assert none == {"freq": 0.0, "mmr": 0.0, "f_mmr": 0.0, "n_with_sticker": 0.0}
