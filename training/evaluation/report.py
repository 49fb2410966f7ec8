"""The evaluation report: `results.json`, `report.md` with tables shaped like the paper's
Tables 1-3, and PNG bar charts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEXT_COLUMNS = [("bleu_1", "BLEU-1"), ("bleu_2", "BLEU-2"), ("bleu_3", "BLEU-3"),
                ("bleu_4", "BLEU-4"), ("dist_1", "Dist-1"), ("dist_2", "Dist-2"),
                ("dist_3", "Dist-3"), ("rouge_l", "ROUGE-L"), ("meteor", "METEOR"),
                ("cider", "CIDEr"), ("bertscore_minilm_f1", "BERTScore-MiniLM")]
MM_COLUMNS = [("freq", "Freq"), ("mmr", "MMr"), ("f_mmr", "f-MMr")]
CONVERSATION_COLUMNS = [
    ("repeated_sentence", "Repeats"), ("echo", "Echo"), ("wrong_valence", "Wrong tone"),
    ("human_life", "Human life"), ("empty_or_cut_off", "Empty/cut"),
    ("safety_replies", "Safety replies")]
STICKER_COLUMNS = [
    ("sticker_rate", "Rate"), ("sticker_rate_first_turn", "First turns"),
    ("sticker_fit_news", "Fit (news)"), ("sticker_fit_gold", "Fit (gold)"),
    ("sticker_fit_plan", "Fit (plan)"), ("sticker_same_as_gold", "= gold"),
    ("distinct_stickers_per_100", "Distinct/100"), ("top_sticker_share", "Top share"),
    ("top_sticker", "Top sticker")]
JUDGE_COLUMNS = [("emp_txt", "EMP-txt"), ("emp_mm", "EMP-mm"), ("con", "CON")]


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(title: str, rows: dict[str, dict[str, Any]], columns: list[tuple[str, str]],
           extra: dict[str, Any] | None = None, extra_name: str = "") -> list[str]:
    header = ["System"] + [name for _, name in columns] + ([extra_name] if extra else [])
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for system, values in sorted(rows.items()):
        cells = [system] + [_cell(values.get(key)) for key, _ in columns]
        if extra:
            cells.append(_cell(extra.get(system)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _plot(rows: dict[str, dict[str, Any]], columns: list[tuple[str, str]], title: str,
          path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = sorted(rows)
    keys = [(k, n) for k, n in columns if any(rows[s].get(k) is not None for s in systems)]
    if not systems or not keys:
        return False
    width = 0.8 / len(systems)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(keys) + 2), 3.2))
    for i, system in enumerate(systems):
        ax.bar(x + i * width, [rows[system].get(k) or 0.0 for k, _ in keys], width,
               label=system)
    ax.set_xticks(x + width * (len(systems) - 1) / 2, [n for _, n in keys], rotation=30)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(results: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write results.json, report.md and the plots under `out`; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    systems = results.get("systems", {})
    text = {s: v["text"] for s, v in systems.items() if "text" in v}
    mm = {s: v["multimodal"] for s, v in systems.items() if "multimodal" in v}
    judge = {s: v["judge"] for s, v in systems.items() if "judge" in v}
    conversation = {s: v["conversation"] for s, v in systems.items() if "conversation" in v}
    ranks = (results.get("rank") or {}).get("mean_rank")
    lines = ["# StickerBot evaluation", "",
             f"Source: `{json.dumps(results.get('source', {}), default=str)}`; "
             f"{results.get('items', 0)} replies from {len(systems)} system(s).", ""]
    if text:
        lines += _table("Text metrics (cf. the paper's Table 1)", text, TEXT_COLUMNS)
        lines += ["BERTScore uses the local all-MiniLM-L6-v2 (not the paper's roberta-large); "
                  "CIDEr is on pycocoevalcap's 0-10 scale.", ""]
        if _plot(text, TEXT_COLUMNS, "Text metrics", out / "text_metrics.png"):
            lines += ["![text metrics](text_metrics.png)", ""]
    if conversation:
        lines += _table("What a person notices (share of replies)", conversation,
                        CONVERSATION_COLUMNS)
        lines += _table("Stickers", conversation, STICKER_COLUMNS)
        lines += ["Repeats: a sentence twice in a reply or from the bot's previous turn; echo: "
                  "the person's sentence copied back; wrong tone: sorrow at good news or cheer "
                  "at bad news, as the emotion model reads the reply; fit (news): no cheerful "
                  "sticker on bad news (comfort stickers such as a hug count as fitting) and no "
                  "sad one on good news; fit (gold): the same mood (cheerful, sad, comfort, "
                  "other) as the reference sticker; fit (plan): an emotion the plan asked for. "
                  "Safety replies (written crisis or check-in) are counted, not scored.", ""]
        if _plot(conversation, CONVERSATION_COLUMNS[:5], "Failure rates",
                 out / "failures.png"):
            lines += ["![failure rates](failures.png)", ""]
    if mm:
        lines += _table("Multimodal metrics (cf. Table 2)", mm, MM_COLUMNS)
        lines += ["MMr: cosine of MiniLM text and StickerEncoder image embeddings; "
                  "f-MMr = (1 - 0.2 (1 - Freq)) MMr (the penalty that reproduces Table 2).", ""]
        if _plot(mm, MM_COLUMNS, "Multimodal metrics", out / "multimodal.png"):
            lines += ["![multimodal metrics](multimodal.png)", ""]
    if judge:
        lines += _table("LLM judge (cf. Table 3; 1-5, mean of samples)", judge, JUDGE_COLUMNS,
                        ranks, "Rank")
        failures = {s: sum(v.get(f"{k}_failures") or 0 for k, _ in JUDGE_COLUMNS)
                    for s, v in judge.items()}
        lines += [f"Malformed judge samples dropped (after re-asks): {failures}.", ""]
        if _plot(judge, JUDGE_COLUMNS, "LLM judge", out / "judge.png"):
            lines += ["![judge](judge.png)", ""]
    paths["markdown"].write_text("\n".join(lines), encoding="utf-8")
    paths.update({p.stem: p for p in out.glob("*.png")})
    return paths
