"""The Bot API methods of the fake Telegram server, with the real server's checks,
error texts and result shapes, plus the shared message and file bookkeeping."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from tests.harness.fake_telegram_delivery import UpdateDelivery
from tests.harness.fake_telegram_server import StoredFile
from tests.harness.fake_telegram_text import (
    CHAT_ACTIONS,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    ApiError,
    bad_request,
    check_commands,
    check_inline_keyboard,
    plain_text,
    sniff_sticker,
)

_EXT = {"static": "webp", "animated": "tgs", "video": "webm"}


class BotApiMethods(UpdateDelivery):
    """Registers one handler per Bot API method the fake implements."""

    def __init__(self, token: str, bot_username: str) -> None:
        super().__init__(token, bot_username)
        for name in (
            "getMe",
            "deleteWebhook",
            "setWebhook",
            "getWebhookInfo",
            "setMyCommands",
            "getMyCommands",
            "getUpdates",
            "getFile",
            "sendMessage",
            "sendSticker",
            "sendPhoto",
            "sendChatAction",
            "answerCallbackQuery",
            "editMessageText",
            "editMessageReplyMarkup",
            "close",
            "logOut",
        ):
            attr = "_m_" + name[0].lower() + name[1:]
            self.register(name, getattr(self, attr))

    # ----- shared bookkeeping ----------------------------------------------------------
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "StickerBot Test",
            "username": self.bot_username,
        }

    def _next_message_id(self, chat_id: int) -> int:
        """Under the lock. One counter per chat for both sides, as in a private chat."""
        n = self._s.next_message_id.get(chat_id, 0) + 1
        self._s.next_message_id[chat_id] = n
        return n

    def _chat_of(self, chat_id: Any) -> dict[str, Any]:
        """Under the lock: the chat the bot writes to; 400 when it never saw that chat."""
        if not isinstance(chat_id, int) or chat_id not in self._s.chats:
            raise bad_request("chat not found")
        return self._s.chats[chat_id]

    def _store_file(
        self, data: bytes, folder: str, ext: str, declared_size: int | None = None
    ) -> StoredFile:
        """Under the lock: keep bytes under a fresh file_id and file_path."""
        n = next(self._ids)
        stored = StoredFile(
            file_id=f"FAKE{n:05d}{secrets.token_hex(8)}",
            file_unique_id=f"U{n:05d}{secrets.token_hex(3)}",
            data=data,
            file_size=len(data) if declared_size is None else declared_size,
            file_path=f"{folder}/file_{n}.{ext}" if ext else f"{folder}/file_{n}",
        )
        self._s.files[stored.file_id] = stored
        return stored

    def _remember(self, message: dict[str, Any]) -> None:
        """Under the lock: index a message (either side) by chat and id."""
        chat = message["chat"]
        self._s.chats.setdefault(chat["id"], chat)
        self._s.messages[(chat["id"], message["message_id"])] = message
        top = self._s.next_message_id.get(chat["id"], 0)
        self._s.next_message_id[chat["id"]] = max(top, message["message_id"])

    def _bot_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        """Under the lock: build, store and return a message the bot sends."""
        chat = self._chat_of(params.get("chat_id"))
        message: dict[str, Any] = {
            "message_id": 0,
            "from": self.bot_user(),
            "chat": chat,
            "date": int(time.time()),
        }
        reply = params.get("reply_parameters") or (
            {"message_id": params["reply_to_message_id"]}
            if params.get("reply_to_message_id")
            else None
        )
        if reply:
            target = self._s.messages.get((chat["id"], int(reply.get("message_id", 0))))
            if target is not None:
                message["reply_to_message"] = {
                    k: v for k, v in target.items() if k != "reply_to_message"
                }
            elif not (
                reply.get("allow_sending_without_reply")
                or params.get("allow_sending_without_reply")
            ):
                raise bad_request("message to be replied not found")
        message.update({k: v for k, v in content.items() if v is not None})
        markup = check_inline_keyboard(params.get("reply_markup"))
        if markup:
            message["reply_markup"] = markup
        message["message_id"] = self._next_message_id(chat["id"])
        self._remember(message)
        self._s.bot_messages.setdefault(chat["id"], []).append(message)
        return message

    def _input_file(self, value: Any, what: str, folder: str, ext: str) -> StoredFile:
        """Under the lock: an uploaded file (stored anew) or the file_id of a known file."""
        if isinstance(value, str) and value.startswith("attach://"):
            raise bad_request("wrong file identifier/HTTP URL specified")
        if isinstance(value, dict) and "data" in value:
            if not value["data"]:
                raise bad_request("file must be non-empty")
            return self._store_file(value["data"], folder, ext)
        if isinstance(value, str) and value in self._s.files:
            return self._s.files[value]
        if not value:
            raise bad_request(f"there is no {what} in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _caption(self, params: dict[str, Any]) -> str | None:
        caption = params.get("caption")
        if caption is None:
            return None
        shown = plain_text(caption, params.get("parse_mode"))
        if len(shown) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return shown or None

    # ----- methods ---------------------------------------------------------------------
    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._s.queue.clear()
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url", "")
        if not url:
            return await self._m_deleteWebhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise bad_request("bad webhook: the fake server only delivers to 127.0.0.1")
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256
            and all(c.isalnum() or c in "_-" for c in secret)
            and secret.isascii()
        ):
            raise bad_request("secret token contains unallowed characters")
        with self._lock:
            if params.get("drop_pending_updates"):
                self._s.queue.clear()
            self.webhook = {
                "url": url,
                "secret_token": secret,
                "max_connections": params.get("max_connections", 40),
                "allowed_updates": params.get("allowed_updates"),
                "ip_address": params.get("ip_address"),
            }
            self._webhook_error = None
            self._flush_to_webhook()
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._s.queue),
            }
            if self.webhook is not None:
                info.update(
                    url=self.webhook["url"],
                    max_connections=self.webhook["max_connections"],
                    ip_address="127.0.0.1",
                )
                if self.webhook["allowed_updates"]:
                    info["allowed_updates"] = self.webhook["allowed_updates"]
                if self._webhook_error:
                    info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        parts = (scope.get("type"), scope.get("chat_id", ""), scope.get("user_id", ""))
        return ":".join(str(p) for p in (*parts, params.get("language_code", "")))

    async def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = check_commands(params.get("commands"))
        with self._lock:
            self._s.commands[self._scope_key(params)] = commands
        return True

    async def _m_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        with self._lock:
            return list(self._s.commands.get(self._scope_key(params), []))

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._get_updates(params)

    async def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = self._s.files.get(params.get("file_id", ""))
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.file_size > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text")
        if not text or not str(text).strip():
            raise bad_request("message text is empty")
        shown = plain_text(str(text), params.get("parse_mode"))
        if not shown.strip():
            raise bad_request("message text is empty")
        if len(shown) > MAX_TEXT:
            raise bad_request("message is too long")
        with self._lock:
            return self._bot_message(params, text=shown, entities=params.get("entities") or None)

    async def _m_sendSticker(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._chat_of(params.get("chat_id"))
            value = params.get("sticker")
            kind = (
                sniff_sticker(value["data"])
                if isinstance(value, dict) and "data" in value
                else None
            )
            stored = self._input_file(
                value, "sticker", "stickers", _EXT.get(kind or "static", "webp")
            )
            if kind is None:
                kind = sniff_sticker(stored.data)
            sticker = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": kind == "animated",
                "is_video": kind == "video",
                "file_size": stored.file_size,
            }
            if params.get("emoji"):
                sticker["emoji"] = params["emoji"]
            return self._bot_message(params, sticker=sticker)

    async def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._chat_of(params.get("chat_id"))
            caption = self._caption(params)
            stored = self._input_file(params.get("photo"), "photo", "photos", "jpg")
            sizes = self._photo_sizes(stored)
            return self._bot_message(params, photo=sizes, caption=caption)

    def _photo_sizes(
        self, largest: StoredFile, width: int = 800, height: int = 600
    ) -> list[dict[str, Any]]:
        """Under the lock: three PhotoSizes, smallest first, each a stored file of its own."""
        out = []
        for scale in (0.1125, 0.4, 1.0):
            f = largest if scale == 1.0 else self._store_file(largest.data, "photos", "jpg")
            out.append(
                {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": f.file_size,
                }
            )
        return out

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self._chat_of(params.get("chat_id"))
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        with self._lock:
            if self._s.callback_queries.get(query_id, True):
                raise bad_request(
                    "query is too old and response timeout expired or query ID is invalid"
                )
            self._s.callback_queries[query_id] = True
        return True

    def _own_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """Under the lock: the bot's message named by chat_id and message_id."""
        if params.get("inline_message_id"):
            raise bad_request("the fake server does not implement inline messages")
        chat = self._chat_of(params.get("chat_id"))
        message = self._s.messages.get((chat["id"], params.get("message_id", 0)))
        if message is None or message["from"]["id"] != self.bot_id:
            raise bad_request("message to edit not found")
        return message

    async def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text")
        if not text:
            raise bad_request("message text is empty")
        shown = plain_text(str(text), params.get("parse_mode"))
        if len(shown) > MAX_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        with self._lock:
            message = self._own_message(params)
            if "text" not in message:
                raise bad_request("there is no text in the message to edit")
            markup = check_inline_keyboard(params.get("reply_markup"))
            if message["text"] == shown and message.get("reply_markup") == markup:
                raise bad_request(
                    "message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message"
                )
            message["text"] = shown
            self._set_markup(message, markup)
            message["edit_date"] = int(time.time())
            return dict(message)

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message = self._own_message(params)
            markup = check_inline_keyboard(params.get("reply_markup"))
            if message.get("reply_markup") == markup:
                raise bad_request(
                    "message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message"
                )
            self._set_markup(message, markup)
            message["edit_date"] = int(time.time())
            return dict(message)

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    async def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_logOut(self, params: dict[str, Any]) -> bool:
        return True


__all__ = ["ApiError", "BotApiMethods"]
