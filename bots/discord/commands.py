"""Slash commands: /reset, /forget (with confirmation buttons), /stickers on|off, and the
admin-only /channel enable|disable (Manage Channels by default, and checked here).

Answers are ephemeral where only the person who asked needs to see them. The /forget
buttons carry the asker's id in their custom_id and are handled in on_interaction, so
they still work after a restart.
"""

import asyncio
import logging

import discord
from discord import app_commands

from bots.discord.handlers import DiscordAdapter
from bots.discord.inbound import PLATFORM
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

FORGET_PREFIX = "forget:"
ADMINS_ONLY = "Only people who can manage channels can change where I answer."
CHANNEL_ON = ("I'll answer every message in this channel now. Use /channel disable to go "
              "back to answering only mentions and replies.")
CHANNEL_ON_ALREADY = "I already answer every message in this channel."
CHANNEL_OFF = "In this channel I'll answer only when someone mentions me or replies to me."
CHANNEL_OFF_ALREADY = "This channel was not enabled: I answer only mentions and replies here."
SERVERS_ONLY = "This command works in server channels; in direct messages I always answer."


def forget_view(owner: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Yes, delete everything",
                                    style=discord.ButtonStyle.danger,
                                    custom_id=f"{FORGET_PREFIX}yes:{owner}"))
    view.add_item(discord.ui.Button(label="Cancel", style=discord.ButtonStyle.secondary,
                                    custom_id=f"{FORGET_PREFIX}no:{owner}"))
    return view


def add_commands(tree: app_commands.CommandTree, adapter: DiscordAdapter) -> None:
    transcripts = adapter.transcripts

    @tree.command(name="reset", description="Forget our conversation so far and start fresh")
    async def reset(interaction: discord.Interaction) -> None:
        channel_id = interaction.channel_id or 0
        async with adapter.lock_for(channel_id, interaction.user.id):  # not mid-reply
            transcripts.reset_conversation(PLATFORM, str(channel_id), str(interaction.user.id))
        await interaction.response.send_message(RESET_DONE, ephemeral=True)

    @tree.command(name="forget", description="Delete everything I stored about you")
    async def forget(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(FORGET_ASK, view=forget_view(
            interaction.user.id), ephemeral=True)

    @tree.command(name="stickers", description="Turn my stickers on or off")
    @app_commands.describe(state="on: a sticker with my answers; off: text only")
    @app_commands.choices(state=[app_commands.Choice(name="on", value="on"),
                                 app_commands.Choice(name="off", value="off")])
    async def stickers(interaction: discord.Interaction,
                       state: app_commands.Choice[str] | None = None) -> None:
        user_id = str(interaction.user.id)
        if state is not None:
            transcripts.set_stickers_enabled(PLATFORM, user_id, state.value == "on")
            text = STICKERS_ON if state.value == "on" else STICKERS_OFF
        else:
            now = "on" if transcripts.stickers_enabled(PLATFORM, user_id) else "off"
            text = f"Stickers are {now}. Use /stickers on or /stickers off."
        await interaction.response.send_message(text, ephemeral=True)

    channel = app_commands.Group(
        name="channel", description="Where I answer every message (admins)",
        guild_only=True, default_permissions=discord.Permissions(manage_channels=True))

    async def allowed(interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            await interaction.response.send_message(SERVERS_ONLY, ephemeral=True)
            return False
        # default_permissions only hides the command; servers can override it, so check.
        if not interaction.permissions.manage_channels:
            log.info("channel command refused for a member without Manage Channels")
            await interaction.response.send_message(ADMINS_ONLY, ephemeral=True)
            return False
        return True

    @channel.command(name="enable", description="Answer every message in this channel")
    async def enable(interaction: discord.Interaction) -> None:
        if not await allowed(interaction):
            return
        added = adapter.channels.enable(str(interaction.channel_id), str(interaction.guild_id),
                                        str(interaction.user.id))
        await interaction.response.send_message(CHANNEL_ON if added else CHANNEL_ON_ALREADY)

    @channel.command(name="disable", description="Answer only mentions and replies here")
    async def disable(interaction: discord.Interaction) -> None:
        if not await allowed(interaction):
            return
        removed = adapter.channels.disable(str(interaction.channel_id))
        await interaction.response.send_message(CHANNEL_OFF if removed else CHANNEL_OFF_ALREADY)

    tree.add_command(channel)


async def on_forget_button(adapter: DiscordAdapter, interaction: discord.Interaction) -> None:
    custom_id = str((interaction.data or {}).get("custom_id", ""))
    _, choice, owner = custom_id.split(":", 2)
    if str(interaction.user.id) != owner:
        await interaction.response.send_message(NOT_YOURS, ephemeral=True)
        return
    if choice != "yes":
        await interaction.response.edit_message(content=FORGET_CANCELLED, view=None)
        return
    removed = await asyncio.to_thread(forget_person, adapter.transcripts,
                                     adapter.media_store, PLATFORM, owner)
    log.info("forgot a discord user and %d media files", removed)
    await interaction.response.edit_message(content=FORGET_DONE.format(
        files=files_phrase(removed)), view=None)
