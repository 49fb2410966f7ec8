"""Human evaluation as in the STICKERCONV paper: a blind questionnaire on its 7 criteria,
import of the raters' filled copies, inter-rater ICC, and the Spearman and Kendall
correlation of each automatic metric with each human criterion.

Blind: the questionnaire shuffles all systems' replies together under opaque question
ids; which system wrote what lives only in the separate key file, which raters never see.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from training.evaluation.items import EvalItem

CRITERIA = ("sticker_quality", "sticker_empathy", "text_empathy", "consistency", "fluency",
            "informativity", "sticker_diversity")
CRITERIA_TEXT = {
    "sticker_quality": "sticker generation quality: is the sticker clear and well made?",
    "sticker_empathy": "empathy of the sticker: does it fit the user's feelings?",
    "text_empathy": "empathy of the text: does it understand and care?",
    "consistency": "consistency: does the reply fit the conversation and its sticker?",
    "fluency": "fluency: is the text natural and grammatical?",
    "informativity": "informativity: does the reply say something useful or specific?",
    "sticker_diversity": "sticker diversity: do this system's stickers vary?",
}
SCALE = (1, 5)
Key = tuple[str, str]  # (item_id, system)


def export_questionnaire(items: Sequence[EvalItem], out: str | Path, seed: int = 0
                         ) -> tuple[Path, Path]:
    """Write `questionnaire.csv` (for raters: empty score columns) and `key.json` (not
    for raters). Returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = list(items)
    random.Random(seed).shuffle(order)
    key: dict[str, dict[str, str]] = {}
    questionnaire = out / "questionnaire.csv"
    with open(questionnaire, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "conversation", "reply", "sticker", *CRITERIA])
        for number, item in enumerate(order, start=1):
            qid = f"q{number:04d}"
            key[qid] = {"item_id": item.item_id, "system": item.system}
            dialogue = "\n".join(f"{t.role}: {t.text}" + (f" [sticker: {t.sticker}]"
                                                         if t.sticker else "")
                                 for t in item.context)
            sticker = ""
            if item.has_sticker:
                sticker = item.sticker_description or item.sticker_id or ""
            writer.writerow([qid, dialogue, item.text, sticker, *([""] * len(CRITERIA))])
    key_path = out / "key.json"
    key_path.write_text(json.dumps({"criteria": CRITERIA_TEXT, "scale": SCALE, "key": key},
                                   indent=1) + "\n", encoding="utf-8")
    return questionnaire, key_path


def import_scores(filled: Mapping[str, str | Path], key_path: str | Path
                  ) -> dict[str, dict[str, dict[Key, float]]]:
    """{criterion: {rater: {(item_id, system): score}}} from each rater's filled CSV.

    Empty cells are skipped (not every rater scores everything); a score outside 1-5 or a
    question missing from the key is an error naming the file and row."""
    key = json.loads(Path(key_path).read_text(encoding="utf-8"))["key"]
    scores: dict[str, dict[str, dict[Key, float]]] = {c: defaultdict(dict) for c in CRITERIA}
    for rater, path in filled.items():
        with open(path, newline="", encoding="utf-8") as f:
            for row_number, row in enumerate(csv.DictReader(f), start=2):
                qid = row.get("question", "")
                if qid not in key:
                    raise ValueError(f"{path}:{row_number}: unknown question {qid!r}")
                target = (key[qid]["item_id"], key[qid]["system"])
                for criterion in CRITERIA:
                    cell = (row.get(criterion) or "").strip()
                    if not cell:
                        continue
                    value = float(cell)
                    if not SCALE[0] <= value <= SCALE[1]:
                        raise ValueError(f"{path}:{row_number}: {criterion} {cell} is not 1-5")
                    scores[criterion][rater][target] = value
    return {c: dict(r) for c, r in scores.items()}


def icc(ratings: np.ndarray) -> dict[str, float]:
    """Shrout & Fleiss ICCs of a [targets, raters] matrix without gaps.

    ICC(2,1): two-way random effects, absolute agreement, one rater (the usual choice
    when raters are a sample of possible raters); ICC(2,k): of the raters' mean; ICC(3,1):
    consistency only. NaN when undefined (fewer than 2 targets or raters)."""
    x = np.asarray(ratings, dtype=float)
    n, k = x.shape
    if n < 2 or k < 2:
        return {"icc2_1": float("nan"), "icc2_k": float("nan"), "icc3_1": float("nan")}
    grand = x.mean()
    ms_rows = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_err = (residual ** 2).sum() / ((n - 1) * (k - 1))
    icc2_1 = (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n)
    icc2_k = (ms_rows - ms_err) / (ms_rows + (ms_cols - ms_err) / n)
    icc3_1 = (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err)
    return {"icc2_1": float(icc2_1), "icc2_k": float(icc2_k), "icc3_1": float(icc3_1)}


def rater_agreement(scores: Mapping[str, Mapping[str, Mapping[Key, float]]]
                    ) -> dict[str, dict[str, float]]:
    """ICC per criterion over the targets that every rater of that criterion scored."""
    out = {}
    for criterion, by_rater in scores.items():
        raters = sorted(by_rater)
        if len(raters) < 2:
            continue
        common = sorted(set.intersection(*(set(by_rater[r]) for r in raters)))
        matrix = np.array([[by_rater[r][t] for r in raters] for t in common]).reshape(
            len(common), len(raters))
        out[criterion] = icc(matrix) | {"targets": float(len(common)),
                                        "raters": float(len(raters))}
    return out


def human_means(scores: Mapping[str, Mapping[str, Mapping[Key, float]]]
                ) -> dict[str, dict[Key, float]]:
    """{criterion: {target: mean over raters}}."""
    out: dict[str, dict[Key, float]] = {}
    for criterion, by_rater in scores.items():
        pooled: dict[Key, list[float]] = defaultdict(list)
        for values in by_rater.values():
            for target, value in values.items():
                pooled[target].append(value)
        out[criterion] = {t: statistics.fmean(v) for t, v in pooled.items()}
    return out


def correlations(automatic: Mapping[str, Mapping[Key, float]],
                 human: Mapping[str, Mapping[Key, float]]) -> list[dict[str, float | str]]:
    """Spearman's rho and Kendall's tau-b (with p-values) of every automatic metric with
    every human criterion, over the targets both have."""
    from scipy.stats import kendalltau, spearmanr

    rows: list[dict[str, float | str]] = []
    for metric, auto in automatic.items():
        for criterion, hum in human.items():
            common = sorted(set(auto) & set(hum))
            if len(common) < 3:
                continue
            a, h = [auto[t] for t in common], [hum[t] for t in common]
            rho, rho_p = spearmanr(a, h)
            tau, tau_p = kendalltau(a, h)
            rows.append({"metric": metric, "criterion": criterion, "n": float(len(common)),
                         "spearman": float(rho), "spearman_p": float(rho_p),
                         "kendall": float(tau), "kendall_p": float(tau_p)})
    return rows


def judge_per_item(judged) -> dict[str, dict[Key, float]]:
    """Per-reply automatic scores from `judge.judge_scores` output, for `correlations`."""
    out: dict[str, dict[Key, float]] = defaultdict(dict)
    for j in judged:
        if j.mean is not None:
            out[j.aspect][(j.item_id, j.system)] = j.mean
    return dict(out)


def write_human_report(scores: Mapping[str, Mapping[str, Mapping[Key, float]]],
                       agreement: Mapping[str, Mapping[str, float]],
                       rows: Sequence[Mapping[str, float | str]], out: str | Path
                       ) -> dict[str, Path]:
    """human.json and human.md (means per system and criterion, ICC, correlations)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_system: dict[str, dict[str, float]] = defaultdict(dict)
    for criterion, means in human_means(scores).items():
        by_system: dict[str, list[float]] = defaultdict(list)
        for (_, system), value in means.items():
            by_system[system].append(value)
        for system, values in by_system.items():
            per_system[system][criterion] = statistics.fmean(values)
    paths = {"json": out / "human.json", "markdown": out / "human.md"}
    paths["json"].write_text(json.dumps({"means": per_system, "agreement": agreement,
                                         "correlations": list(rows)}, indent=1) + "\n",
                             encoding="utf-8")
    lines = ["# Human evaluation", "", "| System | " + " | ".join(CRITERIA) + " |",
             "|" + "---|" * (len(CRITERIA) + 1)]
    for system, values in sorted(per_system.items()):
        cells = [f"{values[c]:.2f}" if c in values else "-" for c in CRITERIA]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines += ["", "## Agreement between raters", "", "| Criterion | ICC(2,1) | ICC(2,k) | "
              "ICC(3,1) | replies | raters |", "|---|---|---|---|---|---|"]
    for criterion, v in agreement.items():
        lines.append(f"| {criterion} | {v['icc2_1']:.3f} | {v['icc2_k']:.3f} | "
                     f"{v['icc3_1']:.3f} | {int(v['targets'])} | {int(v['raters'])} |")
    if rows:
        lines += ["", "## Automatic metrics against human scores", "",
                  "| Metric | Criterion | n | Spearman | p | Kendall | p |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['metric']} | {r['criterion']} | {int(float(r['n']))} | "
                         f"{float(r['spearman']):.3f} | {float(r['spearman_p']):.3g} | "
                         f"{float(r['kendall']):.3f} | {float(r['kendall_p']):.3g} |")
    paths["markdown"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
