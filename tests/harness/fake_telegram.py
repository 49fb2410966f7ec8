"""A fake Telegram Bot API server on 127.0.0.1 for tests.

It speaks real HTTP with the real JSON shapes, on its own event loop in a background
thread, so sync tests and tests that run python-telegram-bot on their own loop can both
use it::

    with FakeTelegram() as tg:
        app = (ApplicationBuilder().token(tg.token).base_url(tg.root_url + "/bot")
               .base_file_url(tg.root_url + "/file/bot").build())
        ...
        tg.send_text(chat_id=1, user_id=1, text="hi")
        tg.wait_for("sendMessage")

Methods live at {root_url}/bot{token}/{method}, files at {root_url}/file/bot{token}/{path}.
The people's side (send_text, send_sticker, press_button...) queues Updates for
getUpdates, or POSTs them to the webhook while one is set. `calls` records every API
call (failed ones too); `fail_next` injects errors. `wait_for` blocks its thread: from
a coroutine on the loop that runs python-telegram-bot, call it via asyncio.to_thread.
Writing to a chat that no update has shown (nor add_chat) is 400 "chat not found".

Layout: fake_telegram_server (thread, loop, HTTP, failures, recording),
fake_telegram_delivery (getUpdates and webhook), fake_telegram_methods (Bot API
methods), fake_telegram_text (parameter decoding and the text rules).
"""

from __future__ import annotations

import copy
import time
from types import TracebackType
from typing import Any

from tests.harness.fake_telegram_methods import BotApiMethods
from tests.harness.fake_telegram_text import utf16_len

__all__ = ["FakeTelegram"]

_STICKER_EXT = {"static": "webp", "animated": "tgs", "video": "webm"}


class FakeTelegram(BotApiMethods):
    """The fake server; see the module docstring."""

    def __init__(
        self, token: str = "123456:TEST-TOKEN", bot_username: str = "stickerbot_test_bot"
    ) -> None:
        super().__init__(token, bot_username)

    # ----- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        """Start serving on a free port of 127.0.0.1; `root_url` is set afterwards."""
        self._start_server()
        return self

    def stop(self) -> None:
        """Stop serving; open long polls return at once. Safe to call twice."""
        self._stop_server()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- inspection --------------------------------------------------------------------
    @property
    def commands(self) -> list[dict[str, str]]:
        """The commands set for the default scope and no language."""
        with self._lock:
            return list(self._s.commands.get("default:::", []))

    def sent_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's sent messages in a chat (current state, after edits), in order."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._s.bot_messages.get(chat_id, [])]

    def add_chat(
        self, chat_id: int, *, chat_type: str = "private", first_name: str = "Ann"
    ) -> None:
        """Make a chat known without an update (the bot may then write to it first)."""
        with self._lock:
            self._s.chats[chat_id] = self._chat(chat_id, chat_type, first_name)

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes stored under a file_id (e.g. a sticker the bot uploaded)."""
        with self._lock:
            return self._s.files[file_id].data

    # ----- people's side -----------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver a raw Update; assigns update_id when missing and indexes its message."""
        with self._lock:
            if "update_id" not in update:
                update["update_id"] = next(self._update_ids)
            message = update.get("message") or update.get("edited_message")
            if isinstance(message, dict) and "chat" in message and "message_id" in message:
                self._remember(message)
        self._deliver(update)
        return update

    def redeliver(self, update: dict[str, Any]) -> None:
        """Queue the very same update (same update_id) again, as Telegram does on a re-send."""
        self._deliver(copy.deepcopy(update), redelivered=True)

    def add_file(
        self,
        data: bytes,
        *,
        declared_size: int | None = None,
        folder: str = "documents",
        ext: str = "",
    ) -> dict[str, Any]:
        """Store bytes; `declared_size` lets a test lie about the size getFile reports."""
        with self._lock:
            f = self._store_file(data, folder, ext, declared_size)
        return {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": f.file_size,
            "file_path": f.file_path,
        }

    @staticmethod
    def _user(user_id: int, first_name: str = "Ann") -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "username": f"user{user_id}",
            "language_code": "en",
        }

    @staticmethod
    def _chat(chat_id: int, chat_type: str, first_name: str = "Ann") -> dict[str, Any]:
        if chat_type == "private":
            return {
                "id": chat_id,
                "type": "private",
                "first_name": first_name,
                "username": f"user{chat_id}",
            }
        if chat_type not in ("group", "supergroup", "channel"):
            raise ValueError(f"unknown chat_type {chat_type!r}")
        return {"id": chat_id, "type": chat_type, "title": "Test group"}

    def _user_message(
        self, chat_id: int, user_id: int, chat_type: str, first_name: str = "Ann", **content: Any
    ) -> dict[str, Any]:
        with self._lock:
            message = {
                "message_id": self._next_message_id(chat_id),
                "from": self._user(user_id, first_name),
                "chat": self._chat(chat_id, chat_type, first_name),
                "date": int(time.time()),
                **{k: v for k, v in content.items() if v is not None},
            }
            self._s.chats[chat_id] = message["chat"]
        return self.push_update({"message": message})

    def send_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        reply_to_bot: bool = False,
        entities: list[dict[str, Any]] | None = None,
        first_name: str = "Ann",
    ) -> dict[str, Any]:
        """A person writes `text`; reply_to_bot makes it a reply to the bot's last message."""
        reply = None
        if reply_to_bot:
            with self._lock:
                mine = self._s.bot_messages.get(chat_id)
                if not mine:
                    raise ValueError(f"the bot has sent nothing to chat {chat_id} to reply to")
                reply = {k: v for k, v in mine[-1].items() if k != "reply_to_message"}
        return self._user_message(
            chat_id,
            user_id,
            chat_type,
            first_name,
            text=text,
            entities=entities,
            reply_to_message=reply,
        )

    def send_command(
        self,
        chat_id: int,
        user_id: int,
        command: str,
        args: str = "",
        *,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """'/start args' with a bot_command entity; '/start@botname' outside private chats."""
        word = "/" + command.lstrip("/")
        if chat_type != "private":
            word += "@" + self.bot_username
        text = f"{word} {args}" if args else word
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(word)}
        return self._user_message(chat_id, user_id, chat_type, text=text, entities=[entity])

    def mention(
        self, chat_id: int, user_id: int, text: str, *, chat_type: str = "group"
    ) -> dict[str, Any]:
        """A group message '@botname text' with a mention entity."""
        handle = "@" + self.bot_username
        entity = {"type": "mention", "offset": 0, "length": utf16_len(handle)}
        return self._user_message(
            chat_id, user_id, chat_type, text=f"{handle} {text}", entities=[entity]
        )

    def send_sticker(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        *,
        kind: str = "static",
        emoji: str | None = "😀",
        set_name: str | None = "TestPack",
        chat_type: str = "private",
        width: int = 512,
        height: int = 512,
    ) -> dict[str, Any]:
        """A person sends a sticker: static (WEBP), animated (TGS) or video (WEBM)."""
        if kind not in _STICKER_EXT:
            raise ValueError(f"kind must be static, animated or video, not {kind!r}")
        with self._lock:
            f = self._store_file(data, "stickers", _STICKER_EXT[kind])
        sticker: dict[str, Any] = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": kind == "animated",
            "is_video": kind == "video",
            "file_size": f.file_size,
        }
        if emoji is not None:
            sticker["emoji"] = emoji
        if set_name is not None:
            sticker["set_name"] = set_name
        return self._user_message(chat_id, user_id, chat_type, sticker=sticker)

    def send_photo(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        chat_type: str = "private",
        width: int = 800,
        height: int = 600,
    ) -> dict[str, Any]:
        """A person sends a photo: three PhotoSizes, largest last, each a stored file."""
        with self._lock:
            largest = self._store_file(data, "photos", "jpg")
            sizes = self._photo_sizes(largest, width, height)
        return self._user_message(chat_id, user_id, chat_type, photo=sizes, caption=caption)

    def send_document(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """A person sends a file as a document."""
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        with self._lock:
            f = self._store_file(data, "documents", ext)
        document = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": f.file_size,
        }
        return self._user_message(chat_id, user_id, chat_type, document=document, caption=caption)

    def press_button(
        self, chat_id: int, user_id: int, message_id: int, data: str
    ) -> dict[str, Any]:
        """A person presses the inline button carrying `data` on the bot's message."""
        with self._lock:
            message = self._s.messages.get((chat_id, message_id))
            if message is None or message["from"]["id"] != self.bot_id:
                raise ValueError(f"no bot message {message_id} in chat {chat_id}")
            buttons = [
                b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
            ]
            if not any(b.get("callback_data") == data for b in buttons):
                raise ValueError(
                    f"message {message_id} has no button with callback_data {data!r}: {buttons}"
                )
            query_id = str(next(self._ids) * 1_000_003)
            self._s.callback_queries[query_id] = False
            query = {
                "id": query_id,
                "from": self._user(user_id),
                "message": copy.deepcopy(message),
                "chat_instance": f"{chat_id * 7919}",
                "data": data,
            }
        return self.push_update({"callback_query": query})
