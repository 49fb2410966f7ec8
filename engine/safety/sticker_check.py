"""Which stickers the bot may send, and the checks a generated one passes first.

Only two kinds of sticker ever leave the bot:

- a **library sticker** (its id is in the loaded library; it is sent from the library's
  own file, whatever path the reply carried);
- a **generated sticker**: a PNG named by its content hash directly inside
  `settings.generated_dir`, made on this turn and checked:
  - drawn by Stable Diffusion: the diffusers `StableDiffusionSafetyChecker` judges the
    picture when STICKERBOT_SAFETY_CHECKER_PATH names its local weights; without them
    the sticker is refused, unless STICKERBOT_ALLOW_UNCHECKED_GENERATED=true says an
    operator accepts unchecked output;
  - drawn by the caption composer (library or emoji art plus a caption from the reply):
    the caption must pass the crisis classifier and a short blocklist, and the file must
    be a plain PNG of sticker size.

Anything else (a picture a person sent, which lives in the media store, a path or URL
from someone's text) is refused. A refused sticker is dropped, its file deleted, and the
reply goes out as text alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from engine.media import MediaError, MediaLimits, decode_file
from engine.types import StickerChoice

if TYPE_CHECKING:
    from engine.safety.crisis import CrisisClassifier
    from engine.stickers import StickerLibrary

log = logging.getLogger(__name__)

GENERATED_NAME = re.compile(r"[0-9a-f]{16,64}\.png")  # engine/pegs/reply.py's _save
MAX_GENERATED_SIDE = 1024
SETTING = "STICKERBOT_SAFETY_CHECKER_PATH"
# Words a caption sticker never shows, whatever the classifier says. Short on purpose: the
# classifier carries the meaning, this list catches the blunt cases.
CAPTION_BLOCKLIST = frozenset("""
kill killing murder die dead death suicide suicidal stab shoot gun knife bomb blood hang
rape nazi hitler slut whore bitch cunt fag faggot retard nigger nigga kys kms
""".split())
_CAPTION_WORD = re.compile(r"[a-z]+")


class ImageChecker(Protocol):
    def flagged(self, image: Image.Image) -> bool: ...


def is_generated_path(path: str | Path, generated_dir: Path) -> bool:
    """Whether `path` is a content-hash PNG directly inside generated_dir (after resolving)."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    return (resolved.parent == Path(generated_dir).resolve()
            and GENERATED_NAME.fullmatch(resolved.name) is not None)


def looks_generated(path: str | Path) -> bool:
    """For senders without settings at hand: a content-hash PNG in a folder named
    "generated" (settings.generated_dir), never a file a person sent or named."""
    resolved = Path(path).resolve()
    return (resolved.parent.name == "generated"
            and GENERATED_NAME.fullmatch(resolved.name) is not None)


def caption_problem(caption: str, crisis: CrisisClassifier | None) -> str | None:
    words = set(_CAPTION_WORD.findall(caption.lower()))
    blocked = sorted(words & CAPTION_BLOCKLIST)
    if blocked:
        return f"caption blocklist ({len(blocked)} word(s))"
    if crisis is not None and caption.strip():
        verdict = crisis.assess(caption)
        if verdict.is_crisis or verdict.check_in:
            return f"caption read as {verdict.label or 'a risk'}"
    return None


class SafetyChecker:
    """diffusers' StableDiffusionSafetyChecker with its CLIP image processor, from local
    files only: a folder with config.json + weights and preprocessor_config.json, or a
    Stable Diffusion folder with safety_checker/ and feature_extractor/ inside."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model.eval()
        self.processor = processor

    @classmethod
    def from_local_path(cls, path: str | Path) -> SafetyChecker:
        from diffusers.pipelines.stable_diffusion.safety_checker import (
            StableDiffusionSafetyChecker,
        )
        from transformers import CLIPImageProcessor

        root = Path(path).expanduser()
        model_dir = root / "safety_checker" if (root / "safety_checker").is_dir() else root
        proc_dir = root / "feature_extractor" if (root / "feature_extractor").is_dir() else root
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{SETTING}={str(path)!r}: no safety checker there "
                                    "(config.json and weights, or a safety_checker/ folder)")
        if not (proc_dir / "preprocessor_config.json").is_file():
            raise FileNotFoundError(f"{SETTING}={str(path)!r}: no preprocessor_config.json "
                                    "(the CLIP image processor; or a feature_extractor/ folder)")
        model = StableDiffusionSafetyChecker.from_pretrained(model_dir, local_files_only=True)
        processor = CLIPImageProcessor.from_pretrained(proc_dir, local_files_only=True)
        return cls(model, processor)

    def flagged(self, image: Image.Image) -> bool:
        import numpy as np
        import torch

        rgb = image.convert("RGB")
        clip_input = self.processor(images=[rgb], return_tensors="pt").pixel_values
        pixels = np.asarray(rgb, dtype=np.float32)[None] / 255.0
        with torch.no_grad():
            _, nsfw = self.model(clip_input=clip_input.to(self.model.dtype), images=pixels)
        return bool(nsfw[0])


class StickerGate:
    """Decides, per reply, whether its sticker may be sent (see the module docstring)."""

    def __init__(self, library: StickerLibrary, generated_dir: Path, *,
                 checker: ImageChecker | None = None, crisis: CrisisClassifier | None = None,
                 allow_unchecked: bool = False) -> None:
        self.library = library
        self.generated_dir = Path(generated_dir)
        self.checker = checker
        self.crisis = crisis
        self.allow_unchecked = allow_unchecked

    def review(self, choice: StickerChoice) -> tuple[StickerChoice | None, str | None]:
        """(the sticker to send or None, why it was refused or None)."""
        if choice.id in self.library:
            png = str(self.library.png_file(choice.id))
            if choice.image_path != png:
                choice = choice.model_copy(update={"image_path": png})
            return choice, None
        problem = self._generated_problem(choice)
        if problem is None:
            return choice, None
        if is_generated_path(choice.image_path, self.generated_dir):
            Path(choice.image_path).unlink(missing_ok=True)  # never served by name later
        return None, problem

    def _generated_problem(self, choice: StickerChoice) -> str | None:
        if choice.mode not in ("gen", "rag"):
            return "not a library sticker"
        if not is_generated_path(choice.image_path, self.generated_dir):
            return "file outside the generated stickers folder"
        path = Path(choice.image_path)
        image = _open_generated(path)
        if image is None:
            return "generated file is not a sticker-sized PNG"
        if choice.generator == "composer":
            return caption_problem(choice.caption or "", self.crisis)
        # Stable Diffusion, or a generator that did not say: the image checker decides.
        if self.checker is not None:
            return "safety checker flagged the image" if self.checker.flagged(image) else None
        if self.allow_unchecked:
            return None
        return f"no safety checker configured ({SETTING})"


def _open_generated(path: Path) -> Image.Image | None:
    limits = MediaLimits(max_bytes=8 * 1024 * 1024,
                         max_pixels=MAX_GENERATED_SIDE * MAX_GENERATED_SIDE, max_frames=1)
    try:
        decoded = decode_file(path, limits)
    except (MediaError, OSError) as error:
        log.warning("generated sticker %s unreadable: %s", path.name, error)
        return None
    if decoded.format != "png":
        return None
    return decoded.image
