"""The `stickerbot` command: parses arguments and calls into the folders.

    stickerbot serve [--host H] [--port P]     the bot on the embedded default (web chat)
    stickerbot stickers build                  render the default emoji sticker pack
    stickerbot stickers import DIR [--metadata FILE] [--pack NAME] [--license L]
    stickerbot stickers list [--emotion E]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from engine.settings import Settings

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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bots.serve import serve
    from storage.db import Database
    from storage.transcript import TranscriptStore
    from tasks.runtime import init_runtime
    from tasks.submit import TurnSubmitter

    updates = {k: v for k, v in (("http_host", args.host), ("http_port", args.port)) if v}
    settings = settings.model_copy(update=updates)
    library = load_library(settings)
    db = Database(settings.resolved_database_url)
    db.migrate()  # before any service starts
    TranscriptStore(db).upsert_stickers(s.model_dump(mode="json") for s in library)
    db.dispose()
    submitter = TurnSubmitter(settings)
    if settings.uses_embedded_queue:
        log.info("loading models (embedded queue: replies are made in this process)")
        init_runtime(settings)
    try:
        asyncio.run(serve(settings, library, submitter))
    finally:
        submitter.close()
    return 0


def cmd_stickers(args: argparse.Namespace, settings: Settings) -> int:
    from engine.embeddings import TextEncoder
    from engine.stickers import build_default_pack, import_folder

    if args.action == "build":
        library = build_default_pack(settings.stickers_dir, TextEncoder(
            settings.embedding_model_path or None))
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


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="stickerbot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bot (web chat on the embedded default)")
    serve.add_argument("--host", help="HTTP host (STICKERBOT_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="HTTP port (STICKERBOT_HTTP_PORT)")
    serve.set_defaults(func=cmd_serve)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging(settings.log_level)
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
