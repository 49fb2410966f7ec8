"""What the `stickerbot evaluate` and `stickerbot evaluate-human` commands do: parse the
selection, load what is needed, print a summary, point at the report."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.evaluation.run import (
    items_from_split,
    items_from_transcripts,
    limited,
    load_library,
    score_items,
)


def when(text: str | None) -> datetime | None:
    """An ISO date/time from the command line, as UTC when it names no zone."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `stickerbot evaluate`."""
    parser.add_argument("--split", type=Path, help="STICKERCONV test sessions (JSONL/JSON)")
    parser.add_argument("--predictions", type=Path, action="append", default=[],
                        help="replies to --split, JSON lines (repeatable)")
    parser.add_argument("--replay", action="append", default=[],
                        help="answer the --split's user turns now with: tuned, untuned, "
                        "pegs (or corpus: the split's own replies, scored alike)")
    parser.add_argument("--dialogues", type=int, help="replay only the first N dialogues")
    parser.add_argument("--transcripts", action="store_true",
                        help="score the bot's logged conversations instead")
    parser.add_argument("--since", help="transcripts from this ISO date/time (UTC)")
    parser.add_argument("--until", help="transcripts before this ISO date/time (UTC)")
    parser.add_argument("--platform", help="transcripts of one platform (web, telegram...)")
    parser.add_argument("--model-version", help="transcripts of one model version")
    parser.add_argument("--limit", type=int, help="score at most N replies per system")
    parser.add_argument("--out", type=Path, help="report folder (default DATA_DIR/eval/...)")
    parser.add_argument("--judge", action="store_true", help="also run the LLM judge")
    parser.add_argument("--judge-backend", choices=["local", "openai"])
    parser.add_argument("--judge-samples", type=int, default=5)
    parser.add_argument("--no-bertscore", action="store_true")
    parser.add_argument("--no-multimodal", action="store_true")
    parser.add_argument("--questionnaire", type=Path,
                        help="also export a blind human-evaluation questionnaire here")
    parser.add_argument("--no-store", action="store_true",
                        help="do not store the scores in the database (review dashboard)")


def evaluate_command(args: argparse.Namespace, settings) -> int:
    """`stickerbot evaluate`: a test split with predictions, or the logged transcripts."""
    if args.transcripts == bool(args.split):
        raise SystemExit("choose one source: --split FILE with --predictions FILE or --replay "
                         "SYSTEM, or --transcripts")
    from storage.db import Database

    library = load_library(settings)
    db = Database(settings.resolved_database_url)
    if args.transcripts:
        items = items_from_transcripts(db, since=when(args.since), until=when(args.until),
                                       platform=args.platform,
                                       model_version=args.model_version, library=library)
        source = {"transcripts": db.safe_url, "since": args.since, "until": args.until,
                  "platform": args.platform, "model_version": args.model_version}
    else:
        if not args.predictions and not args.replay:
            raise SystemExit("--split needs --predictions FILE or --replay SYSTEM")
        items = [i for p in args.predictions for i in items_from_split(args.split, p, library)]
        if args.replay:
            from training.evaluation.replay import replay_systems

            items += replay_systems(settings, args.split, args.replay, library,
                                    dialogues=args.dialogues)
        source = {"split": str(args.split), "predictions": [str(p) for p in args.predictions],
                  "replay": args.replay, "dialogues": args.dialogues}
    items = limited(items, args.limit)
    if not items:
        print("nothing to evaluate: no replies matched the selection")
        return 1
    backend = None
    if args.judge:
        from engine.backends.factory import build_backend

        backend = build_backend(settings, kind=args.judge_backend)
    _, results = score_items(
        db, settings, items, source=source,
        source_kind="transcripts" if args.transcripts else "split", library=library,
        judge_backend=backend, judge_samples=args.judge_samples,
        bertscore=not args.no_bertscore, multimodal=not args.no_multimodal, out=args.out,
        store=not args.no_store)
    for system, scores in results["systems"].items():
        flat = {k: v for part in ("text", "multimodal", "judge") for k, v in
                scores.get(part, {}).items() if isinstance(v, float) and "failures" not in k}
        shown = ", ".join(f"{k} {v:.3f}" for k, v in flat.items())
        print(f"{system} ({scores['n']} replies): {shown}")
    if "stored" in results:
        print(f"{results['stored']} scores stored in {db.safe_url}")
    if args.questionnaire:
        from training.evaluation.human import export_questionnaire

        sheet, key = export_questionnaire(items, args.questionnaire)
        print(f"questionnaire for raters: {sheet} (key, not for raters: {key})")
    print(f"report: {Path(results['out']) / 'report.md'}")
    return 0


def _filled(pairs: list[str]) -> dict[str, Path]:
    out = {}
    for pair in pairs:
        rater, sep, path = pair.partition("=")
        if not sep or not rater or not path:
            raise SystemExit(f"--filled wants RATER=FILE.csv, got {pair!r}")
        if rater in out:
            raise SystemExit(f"rater {rater!r} given twice")
        out[rater] = Path(path)
    return out


def automatic_per_item(results: dict[str, Any]) -> dict[str, dict[tuple[str, str], float]]:
    """{metric: {(item_id, system): value}} from an evaluation's results.json."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    for row in results.get("item_scores", []):
        out.setdefault(row["metric"], {})[(row["item_id"], row["system"])] = float(row["value"])
    return out


def human_command(args: argparse.Namespace, settings) -> int:
    """`stickerbot evaluate-human`: read the raters' filled questionnaires, report ICC per
    criterion and, with --results, the Spearman/Kendall correlation of each per-reply
    automatic metric of that evaluation with each human criterion."""
    from training.evaluation.human import (
        correlations,
        human_means,
        import_scores,
        rater_agreement,
        write_human_report,
    )

    try:
        scores = import_scores(_filled(args.filled), args.key)
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot read the scores: {error}")
        return 1
    agreement = rater_agreement(scores)
    rows: list[dict[str, Any]] = []
    if args.results:
        results = json.loads(Path(args.results).read_text(encoding="utf-8"))
        rows = correlations(automatic_per_item(results), human_means(scores))
    out = args.out or (Path(args.results).parent if args.results else Path(args.key).parent)
    paths = write_human_report(scores, agreement, rows, out)
    for criterion, values in agreement.items():
        print(f"{criterion}: ICC(2,1) {values['icc2_1']:.3f} over {int(values['targets'])} "
              f"replies, {int(values['raters'])} raters")
    print(f"{len(rows)} metric/criterion correlations; report: {paths['markdown']}")
    return 0
