"""Scores and the report of the sticker encoder: image -> description retrieval.

Used by `training.sticker_encoder.train` (held-out metrics per epoch, the final
table and plot); the same top-k scoring serves any image-to-text retrieval check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

KS = (1, 10)


def retrieval_scores(queries: np.ndarray, candidates: np.ndarray, target: np.ndarray,
                     query_labels: Sequence[str], candidate_labels: Sequence[str],
                     max_k: int = 40) -> dict:
    """Rank of the right candidate per query -> top-k accuracy, mean rank, recall curve,
    and emotion agreement (label of the nearest candidate == the query's label)."""
    sims = queries @ candidates.T
    right = sims[np.arange(len(queries)), target]
    ranks = 1 + (sims > right[:, None]).sum(axis=1)
    nearest = sims.argmax(axis=1)
    emotion = np.mean([candidate_labels[j] == q for j, q in zip(nearest, query_labels,
                                                                  strict=True)])
    curve = [float(np.mean(ranks <= k)) for k in range(1, min(max_k, len(candidates)) + 1)]
    out = {f"top{k}": float(np.mean(ranks <= k)) for k in KS}
    out.update(mean_rank=float(ranks.mean()), emotion=float(emotion), recall_curve=curve)
    return out


def chance_scores(query_labels: Sequence[str], candidate_labels: Sequence[str],
                  max_k: int = 40) -> dict:
    """What a random ranking scores on average."""
    m = len(candidate_labels)
    labels = np.array(candidate_labels)
    emotion = float(np.mean([np.mean(labels == q) for q in query_labels]))
    curve = [k / m for k in range(1, min(max_k, m) + 1)]
    out = {f"top{k}": min(k, m) / m for k in KS}
    out.update(mean_rank=(m + 1) / 2, emotion=emotion, recall_curve=curve)
    return out


def report_table(rows: dict[str, dict[str, dict]]) -> str:
    head = (f"{'held-out stickers':<18}{'vs held-out descriptions':>34}"
            f"{'vs all library descriptions':>34}")
    cols = f"{'':<18}" + f"{'top-1':>9}{'top-10':>9}{'emotion':>9}{'rank':>7}" * 2
    lines = [head, cols]
    for name, m in rows.items():
        cells = "".join(f"{m[part]['top1']:>9.3f}{m[part]['top10']:>9.3f}"
                        f"{m[part]['emotion']:>9.3f}{m[part]['mean_rank']:>7.1f}"
                        for part in ("heldout", "library"))
        lines.append(f"{name:<18}{cells}")
    return "\n".join(lines)


def save_plot(path: Path, history: list[float], curve: list[dict[str, float]],
              rows: dict[str, dict[str, dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    epochs = np.arange(1, len(history) + 1)
    axes[0].plot(epochs, history, label="train loss (InfoNCE)")
    axes[0].set(xlabel="epoch", ylabel="loss", title="training")
    twin = axes[0].twinx()
    for key, style in (("top1", ":"), ("top10", "--")):
        twin.plot(epochs, [c[key] for c in curve], style, color="tab:green",
                  label=f"held-out {key} (vs held-out)")
    twin.set(ylabel="held-out accuracy", ylim=(0, 1))
    axes[0].legend(loc="upper center")
    twin.legend(loc="center right")
    for ax, part in ((axes[1], "heldout"), (axes[2], "library")):
        for name, m in rows.items():
            ks = np.arange(1, len(m[part]["recall_curve"]) + 1)
            ax.plot(ks, m[part]["recall_curve"], label=name)
        ax.set(xlabel="k", ylabel="recall@k", ylim=(0, 1.02),
               title=f"held-out images vs {'held-out' if part == 'heldout' else 'all library'}"
                     " descriptions")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
