"""Each text metric against its reference implementation on fixed examples."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import text_metrics as tm

HYPS = [
    "I am so sorry to hear that, it sounds really hard for you.",
    "That is wonderful news! I am so happy for you and your family.",
    "Do not worry, the exam will go fine if you keep studying every day.",
    "It sounds like you had a very long and tiring day at work.",
    "Congratulations on the new job, you must be so proud of yourself!",
]
REFS = [
    "I am really sorry to hear that, it must be so hard for you.",
    "What wonderful news! I am so happy for you.",
    "Don't worry too much, keep studying every day and the exam will go fine.",
    "You had a long day at work, you must be very tired.",
    "Congratulations on your new job! You should be proud of yourself.",
]
TOK_H = [tm.tokenize(h) for h in HYPS]
TOK_R = [tm.tokenize(r) for r in REFS]


@pytest.fixture(scope="module", autouse=True)
def _nltk_data(tmp_path_factory):
    import os

    before = os.environ.get("STICKERBOT_NLTK_DATA")
    os.environ["STICKERBOT_NLTK_DATA"] = str(tmp_path_factory.mktemp("nltk"))
    tm._WORDNET = None
    yield
    if before is None:
        os.environ.pop("STICKERBOT_NLTK_DATA", None)
    else:
        os.environ["STICKERBOT_NLTK_DATA"] = before
    tm._WORDNET = None


def test_tokenize_keeps_words_and_punctuation():
    assert tm.tokenize("Don't worry, OK?") == ["don't", "worry", ",", "ok", "?"]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_bleu_matches_sacrebleu(n):
    from sacrebleu.metrics import BLEU

    ref = BLEU(tokenize="none", smooth_method="none", max_ngram_order=n)
    expected = ref.corpus_score([" ".join(h) for h in TOK_H],
                                [[" ".join(r) for r in TOK_R]]).score / 100
    assert tm.corpus_bleu(TOK_H, TOK_R, n) == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1


def test_bleu_brevity_and_zero_cases():
    from sacrebleu.metrics import BLEU

    hyps, refs = [["a", "b", "c"]], [["a", "b", "c", "d", "e", "f"]]
    expected = BLEU(tokenize="none", smooth_method="none", max_ngram_order=2).corpus_score(
        ["a b c"], [["a b c d e f"]]).score / 100
    assert tm.corpus_bleu(hyps, refs, 2) == pytest.approx(expected, abs=1e-9)
    assert tm.corpus_bleu([["x"]], [["y"]], 1) == 0.0
    assert tm.corpus_bleu([[]], [["y"]], 1) == 0.0


def test_distinct_n_by_hand():
    hyps = [["a", "b", "a", "b"], ["a", "c"]]
    assert tm.distinct_n(hyps, 1) == pytest.approx(3 / 6)
    assert tm.distinct_n(hyps, 2) == pytest.approx(3 / 4)  # ab ba ab | ac
    assert tm.distinct_n(hyps, 3) == pytest.approx(2 / 2)
    assert tm.distinct_n([[]], 2) == 0.0


def test_rouge_l_matches_rouge_score():
    from rouge_score import rouge_scorer

    class Whitespace:
        def tokenize(self, text):
            return text.split()

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Whitespace())
    for h, r in zip(TOK_H, TOK_R, strict=True):
        expected = scorer.score(" ".join(r), " ".join(h))["rougeL"].fmeasure
        assert tm.rouge_l(h, r) == pytest.approx(expected, abs=1e-9)
    assert tm.rouge_l([], ["a"]) == 0.0


def test_cider_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [" ".join(r)] for i, r in enumerate(TOK_R)}
    res = {i: [" ".join(h)] for i, h in enumerate(TOK_H)}
    expected, _ = Cider().compute_score(gts, res)
    assert tm.corpus_cider(TOK_H, [[r] for r in TOK_R]) == pytest.approx(expected, abs=1e-6)


def test_cider_with_several_references_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    refs = [[TOK_R[i], TOK_R[(i + 1) % 5]] for i in range(5)]
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(TOK_H)}
    expected, _ = Cider().compute_score(gts, res)
    assert tm.corpus_cider(TOK_H, refs) == pytest.approx(expected, abs=1e-6)


def test_meteor_uses_wordnet_synonyms_and_matches_nltk():
    from nltk.translate.meteor_score import meteor_score

    wn = tm.wordnet()
    assert wn.synsets("happy")
    for h, r in zip(TOK_H, TOK_R, strict=True):
        assert tm.meteor(h, r) == pytest.approx(meteor_score([r], h, wordnet=wn), abs=1e-12)
    # "dog" matches "hound" only through WordNet (NLTK compares Porter stems there).
    synonym = tm.meteor(["the", "dog", "ran"], ["the", "hound", "ran"])
    unrelated = tm.meteor(["the", "cup", "ran"], ["the", "hound", "ran"])
    assert synonym > unrelated
    assert tm.meteor(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(0.9814814814814815)


def test_prepare_wordnet_names_debian_packages_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base wordnet-sense-index"):
        tm.prepare_wordnet(source=tmp_path / "nowhere", target=tmp_path / "out")


def _greedy_bertscore(hyp: str, ref: str, model, tokenizer) -> tuple[float, float, float]:
    """Independent BERTScore: layer-6 token embeddings, greedy cosine. As in the paper's
    code, [CLS]/[SEP] may be matched but are not averaged over."""
    import torch

    def embed(text):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True).hidden_states[6][0]
        return torch.nn.functional.normalize(out, dim=-1).numpy()

    h, r = embed(hyp), embed(ref)
    sim = h @ r.T
    p, rec = float(sim.max(axis=1)[1:-1].mean()), float(sim.max(axis=0)[1:-1].mean())
    return p, rec, 2 * p * rec / (p + rec)


def test_bertscore_minilm_matches_greedy_cosine():
    from transformers import AutoModel, AutoTokenizer

    from engine.embeddings import default_minilm_path

    path = str(default_minilm_path())
    model = AutoModel.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    ours = tm.bertscore_minilm(HYPS[:3], REFS[:3])
    by_hand = np.array([_greedy_bertscore(h, r, model, tokenizer)
                        for h, r in zip(HYPS[:3], REFS[:3], strict=True)]).mean(axis=0)
    assert np.allclose(ours, by_hand, atol=1e-4)


def test_text_metrics_all_keys():
    out = tm.text_metrics(HYPS, REFS, bertscore=False)
    assert set(out) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "dist_1", "dist_2", "dist_3",
                        "rouge_l", "meteor", "cider"}
    assert out["bleu_1"] >= out["bleu_2"] >= out["bleu_3"] >= out["bleu_4"] > 0
    with pytest.raises(ValueError):
        tm.text_metrics(HYPS, REFS[:2], bertscore=False)
