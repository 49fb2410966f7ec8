"""Helpers of the fake Telegram Bot API: errors, parameter decoding, text rules.

The real server decodes every parameter by its declared type; form fields arrive as
strings (python-telegram-bot JSON-dumps everything that is not already a string), so
the fake converts the fields it knows by name: ids and counts to int, flags to bool,
objects (reply_markup, reply_parameters, entities, commands...) from JSON.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024

INT_FIELDS = {
    "offset",
    "limit",
    "timeout",
    "message_id",
    "user_id",
    "max_connections",
    "message_thread_id",
    "reply_to_message_id",
    "cache_time",
    "from_chat_id",
}
BOOL_FIELDS = {
    "drop_pending_updates",
    "disable_notification",
    "protect_content",
    "show_alert",
    "allow_sending_without_reply",
    "disable_web_page_preview",
    "has_spoiler",
    "show_caption_above_media",
    "allow_paid_broadcast",
}
JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
    "media",
}
PARSE_MODES = {"HTML", "MarkdownV2", "Markdown"}
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MUST_ESCAPE = "is reserved and must be escaped with the preceding '\\'"
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class ApiError(Exception):
    """A Bot API failure: becomes {"ok": false, "error_code", "description"[, "parameters"]}."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def decode_field(name: str, value: Any) -> Any:
    """Convert one string parameter the way the real server types it."""
    if not isinstance(value, str):
        return value
    try:
        if name in INT_FIELDS:
            return int(value)
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value) else value
        if name in BOOL_FIELDS:
            if value.lower() in ("true", "1"):
                return True
            if value.lower() in ("false", "0", ""):
                return False
            raise bad_request(f"wrong parameter {name}")
        if name in JSON_FIELDS:
            return json.loads(value)
    except (ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, ApiError):
            raise
        raise bad_request(f"can't parse {name} JSON object") from exc
    return value


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, as Telegram does."""
    return len(text.encode("utf-16-le")) // 2


def _plain_html(text: str) -> str:
    stack: list[str] = []
    for match in re.finditer(r"<(/?)([a-zA-Z-]+)[^>]*>", text):
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in HTML_TAGS:
            raise bad_request(
                f'can\'t parse entities: Unsupported start tag "{tag}" '
                f"at byte offset {match.start()}"
            )
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            raise bad_request(
                f"can't parse entities: Unexpected end tag at byte offset {match.start()}"
            )
    if stack:
        raise bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    stripped = re.sub(r"<(/?)([a-zA-Z-]+)[^>]*>", "", text)
    if "<" in stripped:
        at = len(stripped[: stripped.index("<")].encode())
        raise bad_request(f'can\'t parse entities: Unsupported start tag "" at byte offset {at}')
    return html.unescape(stripped)


def _plain_markdown_v2(text: str) -> str:
    """Check MarkdownV2 the way Telegram does for the common mistakes; return plain text."""
    out: list[str] = []
    open_marks: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 < len(text):
                out.append(text[i + 1])
            i += 2
            continue
        if ch == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = text.find(fence, i + len(fence))
            if end < 0:
                raise bad_request(
                    f"can't parse entities: Can't find end of Pre entity at byte offset {i}"
                )
            out.append(text[i + len(fence) : end].replace("\\`", "`").replace("\\\\", "\\"))
            i = end + len(fence)
            continue
        mark = next((m for m in ("||", "__", "*", "_", "~") if text.startswith(m, i)), None)
        if mark:
            if open_marks and open_marks[-1] == mark:
                open_marks.pop()
            else:
                open_marks.append(mark)
            i += len(mark)
            continue
        if ch == "!" and text.startswith("![", i):  # custom emoji: ![👍](tg://emoji?id=...)
            i += 1
            continue
        if ch == "[":
            close = text.find("](", i)
            end = text.find(")", close + 2) if close >= 0 else -1
            if close < 0 or end < 0:
                raise bad_request(f"can't parse entities: Character '[' {_MUST_ESCAPE}")
            out.append(_plain_markdown_v2(text[i + 1 : close]))
            i = end + 1
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if ch in MDV2_RESERVED:
            raise bad_request(f"can't parse entities: Character '{ch}' {_MUST_ESCAPE}")
        out.append(ch)
        i += 1
    if open_marks:
        raise bad_request(
            f"can't parse entities: Can't find end of the entity starting at byte offset "
            f"{len(text)}"
        )
    return "".join(out)


def plain_text(text: str, parse_mode: str | None) -> str:
    """The text a message will show after markup is parsed; 400 for bad markup."""
    if not parse_mode:
        return text
    if parse_mode not in PARSE_MODES:
        raise bad_request(f"unsupported parse_mode: {parse_mode}")
    if parse_mode == "HTML":
        return _plain_html(text)
    if parse_mode == "MarkdownV2":
        return _plain_markdown_v2(text)
    return re.sub(r"[*_`\[\]]", "", text)


def check_inline_keyboard(markup: Any) -> dict[str, Any] | None:
    """Validate reply_markup; only inline keyboards are kept on the message (as Telegram does)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("BUTTON_TEXT_INVALID")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if data is None and not any(
                k in button
                for k in (
                    "url",
                    "switch_inline_query",
                    "login_url",
                    "web_app",
                    "copy_text",
                    "pay",
                    "callback_game",
                    "switch_inline_query_current_chat",
                    "switch_inline_query_chosen_chat",
                )
            ):
                raise bad_request('can\'t find field "callback_data"')
    return {"inline_keyboard": rows}


def check_commands(commands: Any) -> list[dict[str, str]]:
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    out = []
    for cmd in commands:
        if not isinstance(cmd, dict) or not COMMAND_RE.match(str(cmd.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(cmd.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        out.append({"command": cmd["command"], "description": cmd["description"]})
    return out


def sniff_sticker(data: bytes) -> str:
    """static (WEBP/PNG), animated (gzipped TGS) or video (WEBM), from the bytes."""
    if data[:2] == b"\x1f\x8b":
        return "animated"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video"
    return "static"
