"""What `stickerbot evaluate` calls: gather replies, score them, write the report.

Two sources of replies:
- a STICKERCONV test split plus a predictions file (JSON lines, one reply a line:
  {"session": i, "turn": t, "system": name, "text": ..., "sticker_id": id|null,
  "sticker_path": file|null}, `session` indexing the split file and `turn` the
  0-based turn in its "conversation"), from any PEGS preset or baseline; several
  systems may share one file or come from several files;
- the bot's own logged conversations, selected by date, platform and model version.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from training.evaluation.items import EvalItem, Turn

HISTORY_TURNS = 6


def _sticker_id(obj: dict[str, Any] | None) -> str | None:
    return Path(obj["image"]).stem if obj and obj.get("image") else None


def _sticker_text(obj: dict[str, Any] | None) -> str | None:
    return (obj.get("description") or obj.get("emotion")) if obj else None


def items_from_split(sessions_path: str | Path, predictions_path: str | Path,
                     library=None) -> list[EvalItem]:
    """One item per prediction, with its session's earlier turns as context and the
    session's own system turn as reference."""
    from training.data import read_sessions

    sessions = read_sessions(sessions_path)
    items = []
    with open(predictions_path, encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            p = json.loads(line)
            try:
                session = sessions[int(p["session"])]
                turns = session["conversation"]
                t = int(p["turn"])
                target = turns[t]
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"{predictions_path}:{number}: no such session/turn "
                                 f"({error})") from error
            context = []
            for earlier in turns[:t]:
                context.append(Turn("user", earlier.get("user_message") or "",
                                    _sticker_text(earlier.get("user_sticker"))))
                context.append(Turn("assistant", earlier.get("system_message") or "",
                                    _sticker_text(earlier.get("system_sticker"))))
            context.append(Turn("user", target.get("user_message") or "",
                                _sticker_text(target.get("user_sticker"))))
            sticker_id = p.get("sticker_id")
            description = p.get("sticker_description")
            if sticker_id and not description and library is not None and sticker_id in library:
                description = _library_text(library, sticker_id)
            items.append(EvalItem(
                item_id=f"{p['session']}:{t}", system=str(p.get("system") or "model"),
                context=context[-HISTORY_TURNS:], text=p.get("text") or "",
                sticker_id=sticker_id, sticker_path=p.get("sticker_path"),
                sticker_description=description,
                reference_text=target.get("system_message") or "",
                reference_sticker_id=_sticker_id(target.get("system_sticker"))))
    return items


def items_from_transcripts(db, *, since: datetime | None = None, until: datetime | None = None,
                           platform: str | None = None, model_version: str | None = None,
                           library=None) -> list[EvalItem]:
    """One item per logged bot reply (system = its model version), oldest first."""
    from sqlalchemy import select

    from storage.models import Conversation, Message

    query = (select(Message, Conversation.platform)
             .join(Conversation, Message.conversation_id == Conversation.id)
             .where(Message.role == "bot"))
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    if platform:
        query = query.where(Conversation.platform == platform)
    if model_version:
        query = query.where(Message.model_version == model_version)
    items = []
    with db.session() as s:
        for bot, conv_platform in s.execute(query.order_by(Message.created_at, Message.id)):
            if bot.reply_to is None:
                continue
            history = s.execute(
                select(Message).where(Message.conversation_id == bot.conversation_id,
                                      Message.id <= bot.reply_to)
                .order_by(Message.created_at.desc(), Message.id.desc()).limit(HISTORY_TURNS)
            ).scalars().all()
            context = [Turn("user" if m.role == "user" else "assistant", m.text or "",
                            _logged_sticker_text(m, library)) for m in reversed(history)]
            meta = bot.sticker_meta or {}
            in_library = library is not None and bot.sticker_id in library
            path = meta.get("image_path") if bot.sticker_id and not in_library else None
            items.append(EvalItem(
                item_id=f"log:{bot.conversation_id}:{bot.id}",
                system=bot.model_version or "unknown", context=context, text=bot.text or "",
                sticker_id=bot.sticker_id if in_library or not path else None,
                sticker_path=path, sticker_description=_logged_sticker_text(bot, library),
                meta={"platform": conv_platform, "created_at": bot.created_at.isoformat(),
                      "latency_ms": bot.latency_ms, "planned_emotion": bot.planned_emotion,
                      "user_emotion": bot.user_emotion}))
    return items


def _library_text(library, sticker_id: str) -> str:
    sticker = library.get(sticker_id)
    return f"{sticker.content_description or sticker.name} ({sticker.emotion.value})"


def _logged_sticker_text(message, library) -> str | None:
    if not message.sticker_id:
        return None
    if message.sticker_meta and message.sticker_meta.get("description"):
        return str(message.sticker_meta["description"])
    if library is not None and message.sticker_id in library:
        return _library_text(library, message.sticker_id)
    return message.sticker_id


@dataclass
class EvaluateOptions:
    """What to score and how; see `stickerbot evaluate --help`."""

    items: list[EvalItem]
    out: Path
    library: Any = None
    text_encoder: Any = None
    sticker_encoder: Any = None
    judge_backend: Any = None
    judge_samples: int = 5
    judge_max_tokens: int = 80
    bertscore: bool = True
    multimodal: bool = True
    conversation: bool = True  # failure rates and sticker use (training/evaluation/conversation)
    emotion_classifier: Any = None  # reads the replies' valence for those
    source: dict[str, Any] = field(default_factory=dict)


def evaluate(options: EvaluateOptions) -> dict[str, Any]:
    """Score every system's replies and write JSON + Markdown + plots under `out`."""
    from training.evaluation.report import write_report

    started = time.monotonic()
    by_system: dict[str, list[EvalItem]] = defaultdict(list)
    for item in options.items:
        by_system[item.system].append(item)
    results: dict[str, Any] = {"source": options.source, "systems": {}, "items": len(options.items)}
    # Per-reply numbers, for the review dashboard and for correlation with human scores.
    item_scores: list[dict[str, Any]] = []
    results["item_scores"] = item_scores
    images = None
    if options.multimodal:
        from engine.embeddings import TextEncoder
        from engine.pegs.sticker_encoder import StickerEncoder
        from training.evaluation.multimodal import StickerImages

        options.text_encoder = options.text_encoder or TextEncoder()
        images = StickerImages(options.sticker_encoder or StickerEncoder.load(), options.library)
    valence_of = _valence_reader(options) if options.conversation else None
    for system, items in sorted(by_system.items()):
        scores: dict[str, Any] = {"n": len(items)}
        if valence_of is not None:
            from engine.responder import FALLBACK_TEXT
            from training.evaluation.conversation import conversation_metrics

            scores["conversation"] = conversation_metrics(items, valence_of, options.library,
                                                          fallback=FALLBACK_TEXT)
        with_ref = [i for i in items if i.reference_text]
        if with_ref:
            from training.evaluation.text_metrics import text_metrics

            scores["text"] = text_metrics([i.text for i in with_ref],
                                          [i.reference_text for i in with_ref],
                                          bertscore=options.bertscore)
        if images is not None:
            from training.evaluation.multimodal import multimodal_metrics, relevance_scores

            scores["multimodal"] = multimodal_metrics(items, options.text_encoder, images)
            stickered = [i for i in items if i.has_sticker]
            for item, value in zip(stickered, relevance_scores(
                    stickered, options.text_encoder, images), strict=True):
                item_scores.append(_item_score(item.item_id, system, "multimodal.mmr", value))
        results["systems"][system] = scores
    if options.judge_backend is not None:
        from training.evaluation.judge import judge_ranks, judge_scores, summarize_scores

        judged = judge_scores(options.judge_backend, options.items,
                              samples=options.judge_samples,
                              max_tokens=options.judge_max_tokens)
        for system, summary in summarize_scores(judged).items():
            results["systems"][system]["judge"] = summary
        results["judge_samples"] = [j.__dict__ for j in judged]
        item_scores.extend(_item_score(j.item_id, j.system, f"judge.{j.aspect}", j.mean)
                           for j in judged if j.mean is not None)
        if len(by_system) > 1:
            results["rank"] = judge_ranks(options.judge_backend, options.items)
    results["seconds"] = time.monotonic() - started
    write_report(results, options.out)
    if any("session" in i.meta for i in options.items):
        from training.evaluation.conversation import side_by_side

        (Path(options.out) / "side_by_side.md").write_text(
            side_by_side(options.items, options.library), encoding="utf-8")
    return results


def _valence_reader(options: EvaluateOptions) -> Any:
    """Text -> valence (-1..1) by the emotion model, remembered per text."""
    from functools import lru_cache

    if options.emotion_classifier is None:
        from engine.embeddings import TextEncoder
        from engine.emotion import EmotionClassifier

        options.text_encoder = options.text_encoder or TextEncoder()
        options.emotion_classifier = EmotionClassifier.load(options.text_encoder)
    classifier = options.emotion_classifier
    return lru_cache(maxsize=None)(lambda text: classifier.predict_one(text).valence)


def _item_score(item_id: str, system: str, metric: str, value: float) -> dict[str, Any]:
    return {"item_id": item_id, "system": system, "metric": metric, "value": float(value)}


def logged_message_id(item_id: str) -> int | None:
    """The bot message a transcript item ("log:<conversation>:<message>") scores."""
    parts = item_id.split(":")
    return int(parts[2]) if len(parts) == 3 and parts[0] == "log" and parts[2].isdigit() \
        else None


def store_scores(db, results: dict[str, Any], run_id: str, source: str) -> int:
    """Every numeric per-system score of `results` as EvaluationScore rows (metric names
    like "text.bleu_1", "multimodal.f_mmr", "judge.emp_mm", "rank"), plus one row per
    scored logged reply (message_id set: "judge.emp_txt", "multimodal.mmr", ...);
    returns the count."""
    from sqlalchemy import select

    from storage.models import EvaluationScore, Message

    rows = []
    ranks = (results.get("rank") or {}).get("mean_rank", {})
    for system, scores in results.get("systems", {}).items():
        flat = {f"{part}.{k}": v for part in ("text", "multimodal", "judge")
                for k, v in scores.get(part, {}).items()}
        if system in ranks:
            flat["rank"] = ranks[system]
        for metric, value in flat.items():
            if isinstance(value, int | float):
                rows.append(EvaluationScore(run_id=run_id, source=source, system=system,
                                            metric=metric[:64], value=float(value),
                                            n=scores.get("n"),
                                            details={"source": results.get("source", {})}))
    per_message = [(logged_message_id(x["item_id"]), x) for x in results.get("item_scores", [])]
    per_message = [(m, x) for m, x in per_message if m is not None]
    with db.session() as s:
        # A message deleted since (/forget) is skipped, not an error.
        alive = set(s.execute(select(Message.id).where(
            Message.id.in_({m for m, _ in per_message}))).scalars()) if per_message else set()
        rows += [EvaluationScore(run_id=run_id, source=source, system=x["system"],
                                 metric=x["metric"][:64], value=x["value"], n=1,
                                 message_id=m, details=None)
                 for m, x in per_message if m in alive]
        s.add_all(rows)
    return len(rows)


def limited(items: list[EvalItem], limit: int | None) -> list[EvalItem]:
    if not limit:
        return items
    counts: dict[str, int] = defaultdict(int)
    kept = []
    for item in items:
        if counts[item.system] < limit:
            counts[item.system] += 1
            kept.append(item)
    return kept


def score_items(db, settings, items: list[EvalItem], *, source: dict[str, Any],
                source_kind: str, library=None, judge_backend=None, judge_samples: int = 5,
                bertscore: bool = True, multimodal: bool = True, out: Path | None = None,
                store: bool = True) -> tuple[str, dict[str, Any]]:
    """Evaluate `items`, write the report under `out` and (with `store`) keep the scores in
    the database; returns (run_id, results)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    out = Path(out or settings.data_dir / "eval" / stamp)
    results = evaluate(EvaluateOptions(
        items=items, out=out, library=library, judge_backend=judge_backend,
        judge_samples=judge_samples, bertscore=bertscore,
        multimodal=multimodal and library is not None, source=source))
    run_id = f"{stamp}-{out.name}"[:64]
    results["run_id"], results["out"] = run_id, str(out)
    if store:
        db.migrate()
        results["stored"] = store_scores(db, results, run_id=run_id, source=source_kind)
    return run_id, results


def load_library(settings):
    from engine.stickers import StickerLibrary

    try:
        return StickerLibrary.load(settings.stickers_dir)
    except FileNotFoundError:
        return None


def evaluate_transcripts(db, settings, *, since: datetime | None = None,
                         until: datetime | None = None, platform: str | None = None,
                         model_version: str | None = None, judge_backend=None,
                         judge_samples: int = 5, bertscore: bool = True,
                         limit: int | None = None, out: Path | None = None,
                         store: bool = True) -> tuple[str, dict[str, Any]]:
    """Score the logged replies matching the selection (what the review dashboard's
    "evaluate" button runs); raises LookupError when nothing matched."""
    library = load_library(settings)
    items = limited(items_from_transcripts(db, since=since, until=until, platform=platform,
                                           model_version=model_version, library=library),
                    limit)
    if not items:
        raise LookupError("nothing to evaluate: no replies matched the selection")
    source = {"transcripts": db.safe_url, "platform": platform, "model_version": model_version,
              "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None}
    return score_items(db, settings, items, source=source, source_kind="transcripts",
                       library=library, judge_backend=judge_backend,
                       judge_samples=judge_samples, bertscore=bertscore, out=out, store=store)
