"""Training data for PEGS: STICKERCONV dialogues, sticker-text pairs, image-caption pairs.

Every sample is one `Sample`: chat messages (the context), the pictures its `<image>`
placeholders stand for, a target text, and the sticker the target ends with (if any).

Dialogues are turned into samples the paper's way: every system turn is a target and
all earlier turns are its context. The context is built exactly as the responder builds
it at inference (`engine.prompting.build_messages` with the emotion model's perception
of the user turn; earlier stickers as their descriptions; the new turn's sticker as an
image), so what the model learns is what it is later asked. A system sticker becomes the
[IMG1]..[IMGr] block after the target text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engine.pegs.heads import caption_target
from engine.planning import plan_reply
from engine.prompting import build_messages
from engine.stickers import Sticker, StickerLibrary
from engine.types import HistoryTurn, Media, MediaKind, UserTurn

if TYPE_CHECKING:
    from engine.perception import Perceiver

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg", ".gif")
DESCRIBE_PROMPT = "Describe this sticker."


@dataclass
class Sample:
    messages: list[dict[str, str]]  # plain text: the batcher adds one <image> per picture
    target: str  # the reply text; the sticker block is added by the batcher
    images: list[str] = field(default_factory=list)  # paths of the new turn's pictures
    sticker_id: str | None = None  # library sticker the target ends with
    emotion: str | None = None  # that sticker's emotion
    caption: str = ""  # text whose SD embedding is the L_gen target


# --- STICKERCONV sessions --------------------------------------------------------------------
def read_sessions(path: str | Path) -> list[dict[str, Any]]:
    """Sessions from a JSONL file (one record a line) or a JSON list; a record without the
    published keys is an error naming its line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        records = json.loads(text)
        lines = enumerate(records, start=1)
    else:
        lines = ((n, json.loads(line)) for n, line in enumerate(text.splitlines(), start=1)
                 if line.strip())
    sessions = []
    for number, record in lines:
        if not isinstance(record, dict) or not isinstance(record.get("conversation"), list):
            raise ValueError(f"{path}:{number}: not a STICKERCONV session (no conversation)")
        sessions.append(record)
    return sessions


def sticker_of(obj: dict[str, Any] | None, library: StickerLibrary) -> Sticker | None:
    """The library sticker a STICKERCONV sticker object names ("image" ends in its id)."""
    if not obj or not obj.get("image"):
        return None
    sticker_id = PurePosixPath(str(obj["image"])).stem
    return library.get(sticker_id) if sticker_id in library else None


def dialogue_samples(sessions: Iterable[dict[str, Any]], library: StickerLibrary,
                     perceiver: Perceiver, *, history_turns: int = 6) -> list[Sample]:
    """One sample per system turn; stickers outside the library are dropped (logged)."""
    samples, unknown = [], 0
    for session in sessions:
        history: list[HistoryTurn] = []
        for turn in session["conversation"]:
            user_sticker = sticker_of(turn.get("user_sticker"), library)
            system_sticker = sticker_of(turn.get("system_sticker"), library)
            unknown += sum(1 for obj, found in ((turn.get("user_sticker"), user_sticker),
                                                (turn.get("system_sticker"), system_sticker))
                           if obj and found is None)
            text = str(turn.get("user_message") or "")
            media = [] if user_sticker is None else [Media(
                kind=MediaKind.sticker, path=str(library.png_file(user_sticker.id)),
                format="png", emoji=user_sticker.emoji, library_id=user_sticker.id)]
            user_turn = UserTurn(platform="train", chat_id="c", user_id="u", message_id="m",
                                 text=text, media=media)
            perception = perceiver.perceive(user_turn)
            messages = build_messages(history[-history_turns:], text, perception,
                                      plan_reply(perception))
            reply = str(turn.get("system_message") or "").strip()
            if reply or system_sticker is not None:
                samples.append(Sample(
                    messages=messages, target=reply, images=[m.path for m in media],
                    sticker_id=system_sticker.id if system_sticker else None,
                    emotion=system_sticker.emotion.value if system_sticker else None,
                    caption=caption_of(system_sticker) if system_sticker else ""))
            history.append(HistoryTurn(role="user", text=text, sticker_id=_id(user_sticker),
                                       sticker_description=_described(user_sticker)))
            history.append(HistoryTurn(role="bot", text=reply, sticker_id=_id(system_sticker),
                                       sticker_description=_described(system_sticker)))
    if unknown:
        log.warning("%d stickers of the sessions are not in the library and were dropped",
                    unknown)
    return samples


def _id(sticker: Sticker | None) -> str | None:
    return sticker.id if sticker else None


def _described(sticker: Sticker | None) -> str | None:
    return sticker.content_description if sticker else None


def caption_of(sticker: Sticker) -> str:
    return caption_target(sticker.content_description, sticker.emotion)


# --- sticker-text pairs ------------------------------------------------------------------------
def caption_samples(library: StickerLibrary, ids: Iterable[str] | None = None) -> list[Sample]:
    """Stage 2 (alignment): the sticker's caption asks for the sticker itself."""
    return [Sample(messages=[{"role": "user", "content": s.content_description}], target="",
                   sticker_id=s.id, emotion=s.emotion.value, caption=caption_of(s))
            for s in _stickers(library, ids)]


def emotion_samples(library: StickerLibrary, ids: Iterable[str] | None = None) -> list[Sample]:
    """Stage 2 (emotion-conditioned): the feeling and when to use it ask for the sticker."""
    return [Sample(messages=[{"role": "user", "content":
                              f"{s.emotion_description} ({s.emotion.value}). {s.recommendation}"}],
                   target="", sticker_id=s.id, emotion=s.emotion.value, caption=caption_of(s))
            for s in _stickers(library, ids)]


def perception_samples(library: StickerLibrary, ids: Iterable[str] | None = None) -> list[Sample]:
    """Stage 1 on the library: the sticker's picture -> its caption."""
    return [Sample(messages=[{"role": "user", "content": DESCRIBE_PROMPT}],
                   target=s.content_description, images=[str(library.png_file(s.id))])
            for s in _stickers(library, ids)]


def _stickers(library: StickerLibrary, ids: Iterable[str] | None) -> Iterator[Sticker]:
    for sticker_id in (library.ids() if ids is None else ids):
        yield library.get(sticker_id)


# --- image-caption pairs ----------------------------------------------------------------
def image_caption_samples(source: str | Path) -> list[Sample]:
    """Stage 1 pairs from a folder (each image beside a .txt caption of the same name) or a
    JSONL manifest of {"image", "caption"} (image paths relative to the manifest)."""
    source = Path(source)
    pairs: list[tuple[Path, str]] = []
    if source.is_dir():
        for image in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            caption = image.with_suffix(".txt")
            if caption.is_file():
                pairs.append((image, caption.read_text(encoding="utf-8").strip()))
    else:
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not row.get("image") or not row.get("caption"):
                raise ValueError(f"{source}:{number}: needs \"image\" and \"caption\"")
            pairs.append((source.parent / row["image"], str(row["caption"]).strip()))
    missing = [str(p) for p, _ in pairs if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {source} are missing: {missing[:3]}")
    return [Sample(messages=[{"role": "user", "content": DESCRIBE_PROMPT}],
                   target=caption, images=[str(image)]) for image, caption in pairs if caption]
