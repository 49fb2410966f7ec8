"""Payload builders of the fake Discord server: users, members, channels, guilds,
messages, attachments and interactions, in the JSON shapes discord.py 2.x parses."""

from __future__ import annotations

import datetime
import itertools
import time
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_CONTENT = 2000
ALL_PERMISSIONS = str((1 << 50) - 1)
_counter = itertools.count(1)


def snowflake() -> int:
    """A fresh, increasing snowflake whose timestamp is now."""
    return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) + (next(_counter) % 4096)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def user(user_id: int, username: str = "ann", *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": None if bot else username.capitalize(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def member(
    user_payload: dict[str, Any] | None, *, permissions: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "roles": [],
        "joined_at": "2024-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
        "pending": False,
    }
    if user_payload is not None:
        out["user"] = user_payload
    if permissions is not None:
        out["permissions"] = str(permissions)
    return out


def text_channel(channel_id: int, guild_id: int, position: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": f"channel-{position}",
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def dm_channel(channel_id: int, recipient: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 1,
        "last_message_id": None,
        "recipients": [recipient],
        "flags": 0,
    }


def guild(guild_id: int, name: str, channel_ids: list[int], bot: dict[str, Any]) -> dict[str, Any]:
    """A GUILD_CREATE payload: @everyone role (all permissions), text channels, the bot."""
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": bot["id"],
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            {
                "id": str(guild_id),
                "name": "@everyone",
                "color": 0,
                "hoist": False,
                "position": 0,
                "permissions": ALL_PERMISSIONS,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "large": False,
        "unavailable": False,
        "member_count": 1,
        "voice_states": [],
        "members": [member(bot)],
        "channels": [text_channel(c, guild_id, i) for i, c in enumerate(channel_ids)],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment(
    attachment_id: int, filename: str, data: bytes, content_type: str, url: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(attachment_id),
        "filename": filename,
        "size": len(data),
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
    }
    if content_type.startswith("image/"):
        out["width"] = 512
        out["height"] = 512
    return out


def message(
    message_id: int,
    channel_id: int,
    author: dict[str, Any],
    content: str,
    *,
    guild_id: int | None = None,
    mentions: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    sticker_items: list[dict[str, Any]] | None = None,
    referenced: dict[str, Any] | None = None,
    components: list[dict[str, Any]] | None = None,
    embeds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "type": 19 if referenced is not None else 0,
        "content": content,
        "author": author,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": mentions or [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": embeds or [],
        "pinned": False,
        "flags": 0,
        "components": components or [],
        "sticker_items": sticker_items or [],
    }
    if guild_id is not None:
        out["guild_id"] = str(guild_id)
    if referenced is not None:
        out["message_reference"] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            **({"guild_id": str(guild_id)} if guild_id is not None else {}),
        }
        out["referenced_message"] = {
            k: v for k, v in referenced.items() if k != "referenced_message"
        }
    return out


def interaction(
    interaction_type: int,
    data: dict[str, Any],
    person: dict[str, Any],
    application_id: int,
    channel: dict[str, Any],
    *,
    guild_id: int | None,
    member_permissions: int = 0,
    message_payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    interaction_id = snowflake()
    out: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": interaction_type,
        "data": data,
        "channel_id": channel["id"],
        "channel": channel,
        "token": f"itoken-{interaction_id}",
        "version": 1,
        "app_permissions": ALL_PERMISSIONS,
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": channel.get("guild_id", "0")},
        "context": 0 if guild_id is not None else 1,
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild_id is not None:
        out["guild_id"] = str(guild_id)
        out["guild_locale"] = "en-US"
        out["member"] = member(person, permissions=member_permissions)
    else:
        out["user"] = person
    if message_payload is not None:
        out["message"] = message_payload
    return out
