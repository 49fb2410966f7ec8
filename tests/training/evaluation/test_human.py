"""Human evaluation: blind export, import, ICC (Shrout & Fleiss' example), correlations."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from training.evaluation.human import (
    CRITERIA,
    correlations,
    export_questionnaire,
    human_means,
    icc,
    import_scores,
    judge_per_item,
    rater_agreement,
)
from training.evaluation.items import EvalItem, Turn
from training.evaluation.judge import Judged

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; their published ICCs.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6],
                          [10, 5, 6, 9], [6, 2, 4, 7]])


def test_icc_matches_shrout_fleiss():
    out = icc(SHROUT_FLEISS)
    assert out["icc2_1"] == pytest.approx(0.29, abs=0.005)
    assert out["icc2_k"] == pytest.approx(0.62, abs=0.005)
    assert out["icc3_1"] == pytest.approx(0.71, abs=0.005)
    assert icc(np.array([[1, 1], [5, 5], [3, 3]]))["icc2_1"] == pytest.approx(1.0)
    assert np.isnan(icc(np.array([[1, 2]]))["icc2_1"])


def _items():
    return [EvalItem(item_id=f"c{i}", system=system, context=[Turn("user", f"hi {i}")],
                     text=f"{system} reply {i}", sticker_id="s1" if system == "pegs" else None,
                     sticker_description="a hug")
            for i in range(4) for system in ("pegs", "base")]


def test_export_is_blind_and_import_maps_back(tmp_path):
    questionnaire, key_path = export_questionnaire(_items(), tmp_path, seed=3)
    with open(questionnaire, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    assert list(rows[0]) == ["question", "conversation", "reply", "sticker", *CRITERIA]
    text = questionnaire.read_text()
    assert "system" not in rows[0] and "c0" not in text  # no system or item ids shown
    key = json.loads(key_path.read_text())["key"]
    filled = {}
    for rater, offset in (("r1", 0), ("r2", 1)):
        path = tmp_path / f"{rater}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                good = key[row["question"]]["system"] == "pegs"
                row = dict(row, text_empathy=str(min(5, (4 if good else 2) + offset)),
                           fluency="" if rater == "r2" else "3")
                writer.writerow(row)
        filled[rater] = path
    scores = import_scores(filled, key_path)
    assert scores["text_empathy"]["r1"][("c0", "pegs")] == 4
    assert scores["text_empathy"]["r2"][("c0", "base")] == 3
    assert "r2" not in scores["fluency"]
    agreement = rater_agreement(scores)
    assert agreement["text_empathy"]["targets"] == 8
    assert agreement["text_empathy"]["icc3_1"] == pytest.approx(1.0)
    assert agreement["text_empathy"]["icc2_1"] < 1.0  # r2 is one point more lenient
    means = human_means(scores)
    assert means["text_empathy"][("c1", "pegs")] == 4.5

    bad = tmp_path / "bad.csv"
    bad.write_text("question,text_empathy\nq0001,9\n")
    with pytest.raises(ValueError, match="not 1-5"):
        import_scores({"r": bad}, key_path)


def test_correlations_against_scipy():
    from scipy.stats import kendalltau, spearmanr

    targets = [(f"c{i}", "s") for i in range(6)]
    auto = dict(zip(targets, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], strict=True))
    human = dict(zip(targets, [1.0, 3.0, 2.0, 4.0, 6.0, 5.0], strict=True))
    [row] = correlations({"emp_txt": auto}, {"text_empathy": human})
    assert row["spearman"] == pytest.approx(spearmanr(list(auto.values()),
                                                      list(human.values()))[0])
    assert row["kendall"] == pytest.approx(kendalltau(list(auto.values()),
                                                      list(human.values()))[0])
    assert row["spearman"] == pytest.approx(1 - 6 * 4 / (6 * 35))  # 1 - 6 sum d^2 / n(n^2-1)
    assert correlations({"m": dict(list(auto.items())[:2])}, {"c": human}) == []


def test_judge_per_item():
    judged = [Judged("c1", "s", "emp_txt", scores=[4, 5]), Judged("c2", "s", "emp_txt")]
    assert judge_per_item(judged) == {"emp_txt": {("c1", "s"): 4.5}}
