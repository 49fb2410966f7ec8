"""Plots that evaluation commands write (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_confusion(confusion: np.ndarray, names: Sequence[str], title: str, out: Path, *,
                   cmap: str = "Blues") -> None:
    """A confusion matrix (rows true, columns predicted) with its counts written in."""
    import matplotlib

    matplotlib.use("Agg")  # headless servers
    import matplotlib.pyplot as plt

    size = max(5.0, 0.8 * len(names) + 1)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(confusion, cmap=cmap)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(names)):
        for j in range(len(names)):
            value = int(confusion[i, j])
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > confusion.max() / 2 else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
