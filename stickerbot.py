"""The `stickerbot` command: parses arguments and calls into the folders.

    stickerbot serve [--host H] [--port P]     everything in one process (web chat, bots)
    stickerbot review [--host H] [--port P]    the web pages only (web chat, /review dashboard)
    stickerbot review add-operator NAME [--password-stdin] [--replace]
    stickerbot telegram | discord              one chat bot (replies come from workers)
    stickerbot worker [--queues gpu,cpu]       a Celery worker holding the model
    stickerbot migrate [--build-stickers]      migrate the database, then exit
    stickerbot stickers build                  render the default emoji sticker pack
    stickerbot stickers import DIR [--metadata FILE] [--pack NAME] [--license L]
    stickerbot stickers list [--emotion E]
    stickerbot simulate [--sessions N] [--out FILE] [--seed S] [--backend local|openai] ...
    stickerbot profiles expand --target N --out FILE
    stickerbot train [--preset tiny|cpu-small|paper] [--llm-path D --vision-path D --sd-path D]
                     [--stages perception,alignment,emotion,joint]
                     --sessions FILE [--val-sessions FILE] [--out DIR] [--version V]
    stickerbot purge [--days N]                 retention: old conversations, orphaned media
    stickerbot evaluate (--split FILE [--predictions FILE...] [--replay tuned --replay untuned]
                        | --transcripts [--since D]
                        [--until D] [--platform P] [--model-version V]) [--out DIR] [--judge]
    stickerbot evaluate-human --key KEY.json --filled RATER=CSV... [--results RESULTS.json]
    stickerbot evaluate-safety [--out DIR] [--serve URL]   false crisis replies, recall
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from settings import Settings

log = logging.getLogger("stickerbot")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO; Telegram URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # Celery logs each task's return value (the reply text) at INFO: keep texts out.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)


def load_library(settings: Settings):
    from engine.stickers import StickerLibrary

    try:
        return StickerLibrary.load(settings.stickers_dir)
    except FileNotFoundError as error:
        raise SystemExit(f"{error}\nBuild it first: stickerbot stickers build") from None


def prepare_database(settings: Settings, library) -> None:
    """Migrations first, then the library's rows, before any service starts."""
    from storage.db import Database
    from storage.transcript import TranscriptStore

    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        TranscriptStore(db).upsert_stickers(s.model_dump(mode="json") for s in library)
    finally:
        db.dispose()


def mount_dashboard(settings: Settings, library):
    """The review dashboard at /review of the web chat app."""
    def extend(app) -> None:
        from review.app import mount_review

        mount_review(app, settings, library)
    return extend


def run_adapters(settings: Settings, *, web: bool, telegram: bool, discord: bool) -> int:
    import asyncio

    from bots.serve import serve
    from tasks.runtime import init_runtime
    from tasks.submit import make_submitter

    library = load_library(settings)
    prepare_database(settings, library)
    submitter = make_submitter(settings)
    if settings.uses_embedded_queue:
        log.info("loading models (embedded queue: replies are made in this process)")
        init_runtime(settings)
    try:
        asyncio.run(serve(settings, library, submitter, web=web, telegram=telegram,
                          discord=discord, extend_web=mount_dashboard(settings, library)))
    finally:
        submitter.close()
    return 0


def with_http(args: argparse.Namespace, settings: Settings) -> Settings:
    updates = {k: v for k, v in (("http_host", args.host), ("http_port", args.port)) if v}
    return settings.model_copy(update=updates)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    return run_adapters(with_http(args, settings), web=True, telegram=True, discord=True)


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "add-operator":
        from review.cli import add_operator_command

        return add_operator_command(settings, args.username,
                                    password_stdin=args.password_stdin, replace=args.replace)
    return run_adapters(with_http(args, settings), web=True, telegram=False, discord=False)


def cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    if settings.telegram_bot_token is None:
        raise SystemExit("stickerbot telegram needs TELEGRAM_BOT_TOKEN")
    return run_adapters(settings, web=False, telegram=True, discord=False)


def cmd_discord(args: argparse.Namespace, settings: Settings) -> int:
    if settings.discord_bot_token is None:
        raise SystemExit("stickerbot discord needs DISCORD_BOT_TOKEN")
    return run_adapters(settings, web=False, telegram=False, discord=True)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from tasks.worker import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    run_worker(settings, queues, pool=args.pool, concurrency=args.concurrency,
               loglevel=args.loglevel or settings.log_level)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.stickers import StickerLibrary

    if args.build_stickers:  # renders only what is missing or out of date
        cmd_stickers(argparse.Namespace(action="build"), settings)
    try:
        library = StickerLibrary.load(settings.stickers_dir)
    except FileNotFoundError:
        library = []  # nothing to sync yet; `stickers build` later, then migrate again
    prepare_database(settings, library)
    print(f"database migrated; {len(library)} stickers recorded")
    return 0


def cmd_stickers(args: argparse.Namespace, settings: Settings) -> int:
    from engine.embeddings import TextEncoder
    from engine.stickers import build_default_pack, import_folder

    if args.action == "build":
        library = build_default_pack(settings.stickers_dir, TextEncoder(
            settings.embedding_model_path or None),
            twemoji_dir=settings.twemoji_svg_dir if settings.sticker_art == "twemoji" else None)
        print(f"{len(library)} stickers in {settings.stickers_dir}")
        return 0
    if args.action == "import":
        from engine.emotion import EmotionClassifier

        encoder = TextEncoder(settings.embedding_model_path or None)
        classifier = EmotionClassifier.load(encoder)
        added = import_folder(
            settings.stickers_dir, args.folder, encoder, pack=args.pack,
            metadata=args.metadata, license=args.license,
            emotion_of=lambda name: classifier.predict_one(name).emotion,
        )
        print(f"imported {len(added)} stickers into pack {args.pack!r}")
        return 0
    library = load_library(settings)
    for sticker in library:
        if args.emotion and sticker.emotion.value != args.emotion:
            continue
        print(f"{sticker.id}\t{sticker.emotion.value}\t{sticker.emoji or ''}\t{sticker.name}")
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from training.simulator.main import SimulateOptions, simulate
    from training.simulator.profiles import SEED_FILE

    out = args.out or settings.data_dir / "simulated" / "sessions.jsonl"
    simulate(settings, SimulateOptions(
        out=out, sessions=args.sessions, seed=args.seed, shards=args.shards, top_k=args.top_k,
        max_turns=args.max_turns, split=args.split, batch_size=args.batch_size,
        backend=args.backend, profiles=args.profiles or SEED_FILE,
        cache=False if args.no_cache else None))
    return 0


def cmd_profiles(args: argparse.Namespace, settings: Settings) -> int:
    from training.simulator.main import expand

    expand(settings, out=args.out, target=args.target, seed=args.seed, backend=args.backend)
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.pipeline import train_command

    return train_command(args, settings)


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import Database
    from storage.media_store import MediaStore
    from storage.retention import purge_days

    days = settings.retention_days if args.days is None else args.days
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        report = purge_days(db, MediaStore(settings.media_dir), days)
    finally:
        db.dispose()
    what = f"older than {days} days" if days > 0 else "(no retention period: files only)"
    print(f"purged {what}: {report.messages} messages, {report.deliveries} deliveries, "
          f"{report.conversations} conversations, {report.users} users, "
          f"{report.files} media files")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.evaluation.command import evaluate_command

    return evaluate_command(args, settings)


def cmd_evaluate_human(args: argparse.Namespace, settings: Settings) -> int:
    from training.evaluation.command import human_command

    return human_command(args, settings)


def cmd_evaluate_safety(args: argparse.Namespace, settings: Settings) -> int:
    from training.safety.evaluate import safety_command

    return safety_command(args, settings)


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="stickerbot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bot (web chat on the embedded default)")
    serve.add_argument("--host", help="HTTP host (STICKERBOT_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="HTTP port (STICKERBOT_HTTP_PORT)")
    serve.set_defaults(func=cmd_serve)

    review = commands.add_parser("review", help="the web pages only (no chat bots)")
    review.add_argument("--host", help="HTTP host (STICKERBOT_HTTP_HOST)")
    review.add_argument("--port", type=int, help="HTTP port (STICKERBOT_HTTP_PORT)")
    review_actions = review.add_subparsers(dest="action")
    add_operator = review_actions.add_parser(
        "add-operator", help="create a dashboard login (password from stdin, "
                             "STICKERBOT_REVIEW_PASSWORD or the terminal, never argv)")
    add_operator.add_argument("username")
    add_operator.add_argument("--password-stdin", action="store_true",
                              help="read the password as one line from stdin")
    add_operator.add_argument("--replace", action="store_true",
                              help="set a new password for an existing operator")
    review.set_defaults(func=cmd_review)

    commands.add_parser("telegram", help="the Telegram bot only (TELEGRAM_BOT_TOKEN)"
                        ).set_defaults(func=cmd_telegram)
    commands.add_parser("discord", help="the Discord bot only (DISCORD_BOT_TOKEN)"
                        ).set_defaults(func=cmd_discord)

    worker = commands.add_parser("worker", help="a Celery worker (needs CELERY_BROKER_URL)")
    worker.add_argument("--queues", default="gpu", help="comma-separated: gpu, cpu")
    worker.add_argument("--pool", default="solo", choices=["solo", "prefork", "threads"],
                        help="solo: one model, one task at a time (default)")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--loglevel", help="default: STICKERBOT_LOG_LEVEL")
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="migrate the database, then exit")
    migrate.add_argument("--build-stickers", action="store_true",
                         help="build the default sticker pack first, or bring it up to date")
    migrate.set_defaults(func=cmd_migrate)

    stickers = commands.add_parser("stickers", help="build, import or list stickers")
    actions = stickers.add_subparsers(dest="action", required=True)
    actions.add_parser("build", help="render the default emoji pack and its index")
    importer = actions.add_parser("import", help="add a folder of images to the library")
    importer.add_argument("folder", type=Path)
    importer.add_argument("--metadata", type=Path, help="JSON, JSONL or CSV keyed by file name")
    importer.add_argument("--pack", default="imported")
    importer.add_argument("--license", default="unknown")
    lister = actions.add_parser("list", help="list the library")
    lister.add_argument("--emotion")
    stickers.set_defaults(func=cmd_stickers)

    simulate = commands.add_parser("simulate", help="Agent4SC: simulate STICKERCONV sessions")
    simulate.add_argument("--sessions", type=int, default=20)
    simulate.add_argument("--out", type=Path, default=None,
                          help="JSONL file (default: DATA_DIR/simulated/sessions.jsonl); "
                               "a run resumes where it stopped")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--shards", type=int, default=100, help="sticker databases")
    simulate.add_argument("--top-k", type=int, default=10)
    simulate.add_argument("--max-turns", type=int, default=6)
    simulate.add_argument("--split", choices=["train", "test", "all"], default="train")
    simulate.add_argument("--batch-size", type=int, default=4, help="sessions in lockstep")
    simulate.add_argument("--backend", choices=["local", "openai"],
                          help="default: STICKERBOT_LLM_BACKEND")
    simulate.add_argument("--profiles", type=Path, help="profiles JSONL (default: the seeds)")
    simulate.add_argument("--no-cache", action="store_true", help="skip the LLM call cache")
    simulate.set_defaults(func=cmd_simulate)

    trainer = commands.add_parser("train", help="train PEGS stages into a checkpoint")
    trainer.add_argument("--preset", choices=["tiny", "cpu-small", "paper"], default="cpu-small",
                         help="paper: the paper's hyperparameters; needs --llm-path and "
                              "--vision-path")
    trainer.add_argument("--llm-path", help="local LLM folder (Hugging Face layout)")
    trainer.add_argument("--vision-path",
                         help="local CLIP, SigLIP or BLIP-2 folder for the input side")
    trainer.add_argument("--sd-path", help="local Stable Diffusion folder (diffusers layout)")
    trainer.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    trainer.add_argument("--stages", default="perception,alignment,emotion,joint",
                         help="comma-separated: perception, alignment, emotion, joint, "
                              "text-only, tool")
    trainer.add_argument("--sessions", type=Path, action="append", default=[],
                         help="STICKERCONV JSONL (simulator output, exported transcripts)")
    trainer.add_argument("--val-sessions", type=Path, action="append", default=[])
    trainer.add_argument("--images", type=Path,
                         help="image-caption folder or JSONL manifest (default: the library)")
    trainer.add_argument("--stickers-dir", type=Path)
    trainer.add_argument("--out", type=Path, help="checkpoint root (default DATA_DIR/checkpoints)")
    trainer.add_argument("--version", default="v1")
    trainer.add_argument("--base", help="a version under --out to train on top of")
    trainer.add_argument("--seed", type=int, default=0)
    trainer.add_argument("--epochs", type=int, help="override every stage's epochs")
    trainer.add_argument("--max-steps", type=int, help="cap each stage's steps per epoch")
    trainer.add_argument("--ret-negatives", choices=["batch", "library"],
                         help="L_ret negatives: the batch's other stickers or the whole library")
    trainer.add_argument("--stop-after", type=int,
                         help="stop after N steps of a stage (resume with the same command)")
    trainer.set_defaults(func=cmd_train)

    evaluation = commands.add_parser("evaluate", help="score replies with the paper's metrics")
    from training.evaluation.command import add_arguments as add_evaluate_arguments

    add_evaluate_arguments(evaluation)
    evaluation.set_defaults(func=cmd_evaluate)

    human = commands.add_parser("evaluate-human",
                                help="import raters' filled questionnaires: ICC, correlations")
    human.add_argument("--key", type=Path, required=True,
                       help="key.json written beside the questionnaire")
    human.add_argument("--filled", action="append", required=True, metavar="RATER=CSV",
                       help="one rater's filled questionnaire.csv (repeat per rater)")
    human.add_argument("--results", type=Path,
                       help="that evaluation's results.json, to correlate its metrics")
    human.add_argument("--out", type=Path, help="report folder (default: beside --results)")
    human.set_defaults(func=cmd_evaluate_human)

    safety = commands.add_parser("evaluate-safety", help="false crisis replies on ordinary "
                                 "conversation and recall per risk level")
    from training.safety.evaluate import add_arguments

    add_arguments(safety)
    safety.set_defaults(func=cmd_evaluate_safety)

    purge = commands.add_parser("purge", help="delete conversations past the retention "
                                "period and media files nothing refers to")
    purge.add_argument("--days", type=int, help="default: STICKERBOT_RETENTION_DAYS")
    purge.set_defaults(func=cmd_purge)

    profiles = commands.add_parser("profiles", help="simulator user profiles")
    profile_actions = profiles.add_subparsers(dest="action", required=True)
    expand = profile_actions.add_parser("expand", help="SELF-INSTRUCT expansion of the seeds")
    expand.add_argument("--target", type=int, default=100)
    expand.add_argument("--out", type=Path, required=True)
    expand.add_argument("--seed", type=int, default=0)
    expand.add_argument("--backend", choices=["local", "openai"])
    profiles.set_defaults(func=cmd_profiles)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging(settings.log_level)
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
