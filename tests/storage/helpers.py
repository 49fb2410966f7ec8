"""Builders for turns and replies used across the storage tests."""

from __future__ import annotations

from engine.types import Emotion, Media, MediaKind, Perception, Reply, StickerChoice, UserTurn


def turn(message_id: str, text: str = "hello", *, platform: str = "telegram",
         chat_id: str = "chat-1", user_id: str = "u-1", media: list[Media] | None = None,
         user_name: str | None = "Ann") -> UserTurn:
    return UserTurn(platform=platform, chat_id=chat_id, user_id=user_id,
                    message_id=message_id, text=text, media=media or [], user_name=user_name)


def sticker_media(path: str, emoji: str | None = "😢", set_name: str | None = "SadCats",
                  library_id: str | None = None) -> Media:
    return Media(kind=MediaKind.sticker, path=path, format="webp", emoji=emoji,
                 set_name=set_name, library_id=library_id)


def perception(emotion: Emotion = Emotion.sadness) -> Perception:
    return Perception(emotion=emotion, valence=-0.6, confidence=0.8,
                      cause_words=["exam", "failed"])


def reply(text: str = "I'm sorry to hear that.", sticker_id: str | None = "noto-1f917",
          model_version: str = "tiny-0") -> Reply:
    sticker = None
    if sticker_id is not None:
        sticker = StickerChoice(id=sticker_id, emotion=Emotion.happiness,
                                description=f"hug for {sticker_id}",
                                image_path=f"/lib/{sticker_id}.png", mode="ret", score=0.42)
    return Reply(text=text, sticker=sticker, user_emotion=Emotion.sadness, user_valence=-0.6,
                 planned_emotion=Emotion.happiness, cause_words=["exam"], latency_ms=321,
                 model_version=model_version)
