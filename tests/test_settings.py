"""The settings: one flat namespace of environment variables, read into a group per layer
and composed at the top (settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bots.settings import BotSettings
from engine.settings import BackendSettings, DataSettings, EngineSettings
from review.settings import ReviewSettings
from settings import Settings
from storage.settings import StorageSettings
from tasks.settings import TaskSettings
from training.settings import TrainingSettings

GROUPS = (DataSettings, EngineSettings, BackendSettings, StorageSettings, TrainingSettings,
          TaskSettings, BotSettings, ReviewSettings, Settings)

# Variables of every group, by the names operators already use.
ENVIRONMENT = {
    "STICKERBOT_DATA_DIR": "/srv/stickerbot",              # data
    "STICKERBOT_REPLY_MODEL": "retrieval",                 # engine
    "STICKERBOT_LLM_BACKEND": "openai",                    # backend
    "DATABASE_URL": "postgresql+psycopg://u:p@db/sb",      # storage, bare name
    "STICKERBOT_MEMORY_TTL_S": "60",                       # storage
    "CELERY_BROKER_URL": "redis://redis:6379/1",           # tasks, bare name
    "STICKERBOT_BATCH_SIZE": "3",                          # tasks
    "TELEGRAM_BOT_TOKEN": "123:abc",                       # bots, bare name
    "STICKERBOT_LOG_LEVEL": "debug",                       # bots, any case
    "STICKERBOT_REVIEW_SESSION_HOURS": "2",                # review
    "STICKERBOT_STICKER_ART": "noto",                   # top
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The STICKERBOT_ spelling of a bare name would win; the art's folder is asserted on.
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "TELEGRAM_BOT_TOKEN", "TWEMOJI_DIR"):
        monkeypatch.delenv(f"STICKERBOT_{name}", raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


def test_variables_of_every_group_reach_the_composed_settings(environment) -> None:
    settings = Settings()
    assert settings.data_dir == Path("/srv/stickerbot")
    assert settings.reply_model == "retrieval" and settings.llm_backend == "openai"
    assert settings.resolved_database_url == "postgresql+psycopg://u:p@db/sb"
    assert settings.memory_ttl_s == 60
    assert not settings.uses_embedded_queue and settings.batch_size == 3
    assert settings.telegram_bot_token.get_secret_value() == "123:abc"
    assert settings.log_level == "DEBUG"
    assert settings.review_session_hours == 2.0
    assert settings.twemoji_svg_dir == Path("/srv/stickerbot/twemoji")
    assert settings.sticker_art == "noto"


def test_a_group_read_on_its_own_sees_the_same_values(environment) -> None:
    """What an entry point of one layer reads (the migrations read StorageSettings)."""
    composed = Settings()
    for group in GROUPS:
        alone = group()
        assert alone.model_dump() == {name: getattr(composed, name)
                                      for name in group.model_fields}, group.__name__


def test_the_composed_settings_is_every_group() -> None:
    """So each package's code, typed with its own group, can be given the composed one."""
    settings = Settings()
    assert all(isinstance(settings, group) for group in GROUPS)


def test_every_setting_belongs_to_exactly_one_group() -> None:
    owners: dict[str, list[str]] = {}
    for group in GROUPS:
        for name in vars(group).get("__annotations__", {}):
            if name in Settings.model_fields:
                owners.setdefault(name, []).append(group.__name__)
    assert {name: groups for name, groups in owners.items() if len(groups) > 1} == {}
    assert set(owners) == set(Settings.model_fields)


@pytest.mark.parametrize(("name", "value"), [
    ("STICKERBOT_LLM_BACKEND", "vllm"),
    ("STICKERBOT_REPLY_LLM", "anthropic"),
    ("STICKERBOT_REPLY_MODEL", "best"),
    ("STICKERBOT_STICKER_MODE", "gif"),
    ("STICKERBOT_LOG_LEVEL", "loud"),
])
def test_a_choice_outside_its_list_is_refused_at_start(monkeypatch: pytest.MonkeyPatch,
                                                       name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("STICKERBOT_").lower()):
        Settings()


def test_the_time_limits_are_checked_in_the_tasks_group() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        TaskSettings(task_time_limit_s=7200.0)
