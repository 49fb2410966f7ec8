"""The web chat's POST bodies as FastAPI reads them: the models, the routes that take one
body type each (JSON, or multipart with a file), and the refusal of a body that does not
validate, in the chat's own error codes (bots/web/app.py answers with them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, Field, StrictBool
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import Scope

CONFIRM = (400, "confirm", "Send \"confirm\": true to delete everything.")
# A field the body models refuse, as the person reads it; a claim to be someone else is
# named first, whatever else is wrong.
FIELD_ERRORS = {
    "user": (400, "bad_user", "The web chat knows who you are from its cookie or bearer "
                              "token: leave \"user\" out."),
    "message_id": (400, "bad_message_id", "message_id must be 1-80 plain characters."),
    "confirm": CONFIRM,
}


def _blank_is_none(value: Any) -> Any:
    """An empty field means "not given" (forms send empty strings)."""
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)
MessageId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]


class ChatMessage(BaseModel):
    """A message to the bot: a JSON body, or the text fields of a multipart form."""

    text: str | None = None
    sticker_id: Annotated[str | None, Blank] = None
    message_id: Annotated[MessageId | None, Blank] = None
    user: str | None = None  # older clients sent their own id: only the caller's is accepted


class ForgetRequest(BaseModel):
    confirm: StrictBool = False
    user: str | None = None


class BodyTypeRoute(APIRoute):
    """A route taken only for bodies of its `content_type`: JSON and multipart posts to
    one path reach their own endpoints, each parsed by FastAPI; other bodies reach the
    path's plain route, which refuses them with 415."""

    content_type: ClassVar[str]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.FULL and not Headers(scope=scope).get(
                "content-type", "").startswith(self.content_type):
            return Match.NONE, {}
        return match, child_scope


class JsonRoute(BodyTypeRoute):
    content_type = "application/json"


class MultipartRoute(BodyTypeRoute):
    content_type = "multipart/form-data"


def invalid_body(errors: Sequence[Any]) -> tuple[int, str, str]:
    """The refusal of a body FastAPI could not validate: a field of FIELD_ERRORS first,
    then JSON that is no object, then the first field's complaint."""
    fields = [str(error["loc"][1]) if len(error["loc"]) > 1 else "" for error in errors]
    for name, refusal in FIELD_ERRORS.items():
        if name in fields:
            return refusal
    if any(error["type"] == "json_invalid" for error in errors):
        return 400, "bad_json", "The request body is not valid JSON."
    if "" in fields:
        return 400, "bad_json", "Send a JSON object."
    return 400, "bad_request", f"{fields[0]}: {errors[0]['msg']}"
