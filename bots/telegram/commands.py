"""The bot's commands: /start /help /reset /forget (with a confirmation button) /stickers."""

from __future__ import annotations

import asyncio
import logging

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bots.telegram.handlers import TelegramAdapter
from bots.telegram.inbound import PLATFORM
from bots.texts import (
    FORGET_ASK,
    FORGET_CANCELLED,
    FORGET_DONE,
    NOT_YOURS,
    RESET_DONE,
    STICKERS_OFF,
    STICKERS_ON,
    files_phrase,
)
from storage.forget import forget_person

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("start", "What I do and what I store"),
    BotCommand("help", "How to talk to me"),
    BotCommand("reset", "Forget our conversation so far and start fresh"),
    BotCommand("forget", "Delete everything I stored about you"),
    BotCommand("stickers", "Turn my stickers on or off: /stickers on|off"),
]

GREETING = (
    "Hi {name}! I'm StickerBot. Tell me how you feel or what happened, or send me a "
    "sticker or a picture, and I'll answer with a few kind words and a fitting sticker.\n\n"
    "What I store: your messages, the emotions I detect in them, and the stickers and "
    "pictures you send me, so I can follow our conversation and so my answers can be "
    "reviewed and improved.\n\n"
    "/reset makes me forget our conversation so far.\n"
    "/forget deletes everything I stored about you, for good.\n"
    "/stickers off turns my stickers off (/stickers on brings them back)."
)
HELP = (
    "Just write to me, or send a sticker (static, animated or video) or a picture, with a "
    "caption if you like. In groups I answer when you mention me, reply to one of my "
    "messages, or use a command.\n\n"
    "/reset: start our conversation afresh\n"
    "/forget: delete everything I stored about you\n"
    "/stickers on|off: stickers in my answers, or text only"
)


class Commands:
    def __init__(self, adapter: TelegramAdapter) -> None:
        self.adapter = adapter

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        name = message.from_user.first_name or "there"
        await self.adapter.answer_text(context.bot, message, GREETING.format(name=name))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await self.adapter.answer_text(context.bot, update.message, HELP)

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        async with self.adapter.lock_of(message):  # not in the middle of a reply
            self.adapter.transcripts.reset_conversation(
                PLATFORM, str(message.chat_id), str(message.from_user.id))
        await self.adapter.answer_text(context.bot, message, RESET_DONE)

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        owner = message.from_user.id
        keyboard = InlineKeyboardMarkup([[
            InlineKeyboardButton("Yes, delete everything", callback_data=f"forget:yes:{owner}"),
            InlineKeyboardButton("Cancel", callback_data=f"forget:no:{owner}"),
        ]])
        await self.adapter.answer_text(context.bot, message, FORGET_ASK, markup=keyboard)

    async def forget_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        _, choice, owner = query.data.split(":", 2)
        if str(query.from_user.id) != owner:  # in a group anyone can press it
            await query.answer(NOT_YOURS, show_alert=True)
            return
        if choice != "yes":
            await query.answer()
            await query.edit_message_text(FORGET_CANCELLED)
            return
        removed = await asyncio.to_thread(forget_person, self.adapter.transcripts,
                                         self.adapter.media_store, PLATFORM, owner)
        log.info("forgot a telegram user and %d media files", removed)
        files = files_phrase(removed)
        await query.answer()
        await query.edit_message_text(FORGET_DONE.format(files=files))

    async def stickers(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        user_id = str(message.from_user.id)
        transcripts = self.adapter.transcripts
        choice = (context.args or [""])[0].lower()
        if choice in ("on", "off"):
            transcripts.set_stickers_enabled(PLATFORM, user_id, choice == "on")
            text = STICKERS_ON if choice == "on" else STICKERS_OFF
        else:
            state = "on" if transcripts.stickers_enabled(PLATFORM, user_id) else "off"
            text = f"Stickers are {state}. Use /stickers on or /stickers off."
        await self.adapter.answer_text(context.bot, message, text)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await self.adapter.answer_text(context.bot, update.message,
                                       "I don't know that command.\n\n" + HELP)
