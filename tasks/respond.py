"""The `respond` task: one person's turn in, the bot's reply out (as JSON)."""

from __future__ import annotations

from typing import Any

from engine.types import UserTurn
from tasks.app import RESPOND_TASK, celery_app
from tasks.runtime import get_runtime


@celery_app.task(name=RESPOND_TASK)
def respond(turn: dict[str, Any]) -> dict[str, Any]:
    reply = get_runtime().handle(UserTurn.model_validate(turn))
    return reply.model_dump(mode="json")
