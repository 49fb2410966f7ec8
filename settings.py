"""All of StickerBot's settings: one object, read once by the entry points and passed down.

Each layer keeps the settings it reads in its own group, which extends the groups of the
layers below it:

    engine/settings.py    DataSettings, EngineSettings     paths; models, replies, safety, limits
                          BackendSettings                  simulator and judge LLM backend
    storage/settings.py   StorageSettings                  database, Redis memory cache
    training/settings.py  TrainingSettings                 (engine's and storage's)
    tasks/settings.py     TaskSettings                     queue, time limits, batching, servers
    bots/settings.py      BotSettings                      platforms, web security, flood control
    review/settings.py    ReviewSettings                   dashboard logins

`Settings` composes them, so code in a package takes its own group and is given this.
Every field is read from `STICKERBOT_<FIELD>` (one flat namespace); the conventional names
`TELEGRAM_BOT_TOKEN`, `DISCORD_BOT_TOKEN`, `DATABASE_URL`, `REDIS_URL` and
`CELERY_BROKER_URL` are read as they are. Only the entry points (stickerbot.py, the
scripts' `main`s, the migrations' env.py) read the environment; the rest is passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bots.settings import BotSettings
from review.settings import ReviewSettings
from training.settings import TrainingSettings


class Settings(BotSettings, ReviewSettings, TrainingSettings):
    # The Twemoji SVGs the default sticker pack is drawn from (default: data_dir/twemoji;
    # `make twemoji` fetches them there, the Docker image carries them in /opt/twemoji).
    twemoji_dir: Path | None = None
    # Which art draws the default pack: "twemoji" (crisp vector art) or "noto" (Noto
    # Color Emoji's 136 px bitmaps, the pictures the committed PEGS cpu-small learnt on);
    # the sticker ids are the same under both.
    sticker_art: Literal["noto", "twemoji"] = "twemoji"

    @property
    def twemoji_svg_dir(self) -> Path:
        return self.twemoji_dir or self.data_dir / "twemoji"
