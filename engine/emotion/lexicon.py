"""Emoji -> (emotion, valence): the emotion a sticker's platform emoji stands for.

Telegram gives every sticker one emoji; people also type them in text. The table is
hand-curated over the common face, heart, hand and symbol emoji. Lookups ignore
variation selectors and skin tones, and a ZWJ sequence not in the table falls back
to its first component (a crying face with a hand is still a crying face).
"""

from __future__ import annotations

from engine.types import Emotion

# (emotion, valence, space-separated emoji). Valence is our judgement of how
# pleasant the emoji reads in chat, in [-1, 1].
_GROUPS: list[tuple[Emotion, float, str]] = [
    # --- happiness -----------------------------------------------------------
    (Emotion.happiness, 0.9, "😍 🥰 😘 🤩 🥳 🎉 🎊 💖 💕 💞 💓 💗 💝 ❤️ 🧡 💛 💚 💙 💜 "
     "🩷 🩵 🤎 🤍 🖤 ❤️‍🔥 💘 😻 💑 💏 👩‍❤️‍👨 "
     "🏆 🥇 🎂 🎁 🌈 ✨ 🌟 ⭐ 💯 🙌 👏 🤗 😆 😂 🤣 😹 😀 😃 😄 😁"),
    (Emotion.happiness, 0.7, "😊 ☺️ 🙂 😉 😋 😛 😜 🤪 😝 😚 😙 😗 😇 😺 😸 😽 👍 👌 🤙 ✌️ 🤞 🫶 💪 "
     "🥂 🍾 🎈 🌞 ☀️ 🌻 🌸 🌷 💐 🍀 🦄 🐣 🥹 😌 🤤 💃 🕺 🎶 🎵 ✅ 🆒 🔥 👑 💎 🙏 🫰 🤝 🥲"),
    # --- sadness -------------------------------------------------------------
    (Emotion.sadness, -0.8, "😢 😭 😿 💔 😞 😔 😟 🙁 ☹️ 😥 😓 😪 🥺 😩 😫 🥀 🖤‍🩹 ❤️‍🩹 🫠 🌧️ ☔ "
     "🕯️ ⚰️ 🪦 😣 😖 🫥 😶‍🌫️ 🙍 🙍‍♀️ 🙍‍♂️ 💧 🌚 👎"),
    # --- anger ---------------------------------------------------------------
    (Emotion.anger, -0.8, "😠 😡 🤬 😤 👿 😾 💢 🖕 👊 🤛 🤜 💥 🗯️ 🙎 🙎‍♀️ 🙎‍♂️ 😈 🔪 💣 🥊"),
    # --- fear ----------------------------------------------------------------
    (Emotion.fear, -0.7, "😨 😰 😱 😧 😦 🙀 😬 🫣 👻 💀 ☠️ 🕷️ 🕸️ 🐍 🥶 🫨 😵 😵‍💫 🆘 ⚠️ 🚨 🏃 "
     "🏃‍♀️ 🏃‍♂️ 🫢 😶 🤐"),
    # --- disgust -------------------------------------------------------------
    (Emotion.disgust, -0.7, "🤢 🤮 😖 🤧 🦠 💩 🪳 🐀 🪰 🐛 🧟 😷 🥴 😒 🙄 😑 🫤 👃 🚽 🗑️ 🤨"),
    # --- surprise ------------------------------------------------------------
    (Emotion.surprise, 0.1, "😮 😯 😲 😳 🤯 ‼️ ⁉️ ❓ ❗ ❕ ❔ 👀 😮‍💨 🎆 🎇 🤭 🙊 🙈 "
     "🎃 🧐 🫡"),
    # --- milder shades -------------------------------------------------------
    (Emotion.anger, -0.4, "🤦 🤦‍♀️ 🤦‍♂️ 🙅 🙅‍♀️ 🙅‍♂️ ⛔ 🚫 ❌"),
    (Emotion.happiness, 0.5, "😅 🙆 🙆‍♀️ 🙆‍♂️ 💁 💁‍♀️ 🤠 🐥 🌺 🍰 🍕 🍻 🎮 🏖️ 🌴 🎤 🎸 🍦 🧁 🫂"),
    (Emotion.sadness, -0.5, "😕 🙇 🙇‍♀️ 🙇‍♂️ 🫤 🌫️ 🍂"),
    # --- neutral -------------------------------------------------------------
    (Emotion.neutral, 0.0, "😐 🤔 🙃 😏 🤓 😎 🤷 🤷‍♀️ 🤷‍♂️ 👋 👉 👈 👆 👇 ☝️ ✋ 🤚 🖐️ 🖖 📝 📌 📎 "
     "💬 💭 🗨️ ☕ 🍵 📚 📖 💻 📱 🕐 ⏰ 🆗 🐱 🐶 🐻 🐼 🐸 🦊 🐧 🐰 🐹 🤖 👽 🤡"),
]

_SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
_VARIATION = {"\ufe0f", "\ufe0e"}
_ZWJ = "\u200d"


def normalise_emoji(seq: str) -> str:
    """Drop variation selectors, skin tones and stray joiners at the ends."""
    kept = "".join(ch for ch in seq if ch not in _VARIATION and ch not in _SKIN_TONES)
    return kept.strip(_ZWJ)


def _build() -> dict[str, tuple[Emotion, float]]:
    table: dict[str, tuple[Emotion, float]] = {}
    for emotion, valence, emojis in _GROUPS:
        for raw in emojis.split():
            key = normalise_emoji(raw)
            # First listing wins, so a sequence filed twice keeps its first meaning.
            if key and key not in table:
                table[key] = (emotion, valence)
    return table


EMOJI_TABLE: dict[str, tuple[Emotion, float]] = _build()
_MAX_LEN = max(len(k) for k in EMOJI_TABLE)


def find_emoji(text: str) -> list[tuple[str, Emotion, float]]:
    """Every known emoji in `text`, longest match first, in reading order."""
    clean = normalise_emoji(text)
    found: list[tuple[str, Emotion, float]] = []
    i = 0
    while i < len(clean):
        for size in range(min(_MAX_LEN, len(clean) - i), 0, -1):
            piece = clean[i:i + size].strip(_ZWJ)
            hit = EMOJI_TABLE.get(piece)
            if hit is not None:
                found.append((piece, hit[0], hit[1]))
                i += size
                break
        else:
            i += 1
    return found


def emoji_emotion(text_or_emoji: str) -> tuple[Emotion, float] | None:
    """The emotion and valence the emoji in a string stand for, or None when none is known.

    Several emoji vote; ties go to the one seen first. Valence is their mean for
    the winning emotion.
    """
    found = find_emoji(text_or_emoji)
    if not found:
        return None
    votes: dict[Emotion, list[float]] = {}
    for _, emotion, valence in found:
        votes.setdefault(emotion, []).append(valence)
    # Non-neutral emoji carry the feeling; 🤔 next to 😭 should not win a tie.
    best = max(votes, key=lambda e: (len(votes[e]) + (0.5 if e != Emotion.neutral else 0.0),
                                     -list(votes).index(e)))
    vals = votes[best]
    return best, max(-1.0, min(1.0, sum(vals) / len(vals)))
