"""Generated stickers are checked before they are sent; nothing but library stickers and
checked generated ones ever goes out.

The Stable Diffusion path runs the real diffusers StableDiffusionSafetyChecker class,
built tiny and random from a CLIPConfig in code, saved to a folder and loaded from it
the way STICKERBOT_SAFETY_CHECKER_PATH is; its concept thresholds are set so that it
flags every image (or none), since random weights recognise nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.pegs import PegsModel
from engine.pegs.diffusion import StickerGenerator, tiny_pipeline
from engine.pegs.reply import PegsReplyConfig, PegsReplyModel
from engine.perception import Perceiver
from engine.responder import ConversationState, Responder
from engine.safety.sticker_check import SafetyChecker, StickerGate, is_generated_path
from engine.types import Emotion, StickerChoice, UserTurn
from storage.media_store import MediaStore
from tests.engine.pegs.pegs_support import tiny_pegs, train_reply
from tests.factories import committed_crisis_classifier, safety_policy

CHAT = [{"role": "user", "content": "i lost my dog today"}]


def save_tiny_checker(folder: Path, *, flag_everything: bool) -> Path:
    """A random StableDiffusionSafetyChecker + CLIP image processor, saved like the
    safety_checker/ and feature_extractor/ folders of a Stable Diffusion checkpoint."""
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
                     "num_hidden_layers": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
                       "num_hidden_layers": 1, "image_size": 32, "patch_size": 8},
        projection_dim=8)
    model = StableDiffusionSafetyChecker(config)
    with torch.no_grad():
        # A concept is flagged when cosine - threshold > 0; cosines lie in [-1, 1].
        model.concept_embeds_weights.fill_(-2.0 if flag_everything else 2.0)
        model.special_care_embeds_weights.fill_(2.0)
    model.save_pretrained(folder / "safety_checker")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(folder / "feature_extractor")
    return folder


@pytest.fixture(scope="module")
def taught() -> PegsModel:
    model = tiny_pegs()
    train_reply(model, CHAT, f"i am so sorry . {model.sticker_text} hug ?")
    return model


@pytest.fixture(scope="module")
def generator() -> StickerGenerator:
    return StickerGenerator(tiny_pipeline(), output_size=128)


def gen_responder(taught, generator, classifier, library, generated_dir: Path,
                  **gate) -> Responder:
    config = PegsReplyConfig(mode="gen", temperature=0.0, max_new_tokens=12, gen_steps=2)
    model = PegsReplyModel(taught, library, generated_dir, config=config, generator=generator)
    return Responder(Perceiver(classifier, library, ocr=False), model, sticker_rate=1.0,
                     safety=safety_policy(classifier, library, generated_dir, **gate))


def answer(responder: Responder):
    turn = UserTurn(platform="web", chat_id="c", user_id="u", message_id="1",
                    text="i lost my dog today")
    # Far behind the sticker rate: the sticker is forced, so Stable Diffusion runs.
    return responder.respond(turn, ConversationState(bot_turns=2, bot_sticker_turns=0))


def test_a_flagged_diffusion_sticker_is_never_sent(taught, generator, classifier, library,
                                                   tmp_path) -> None:
    checker = SafetyChecker.from_local_path(save_tiny_checker(tmp_path / "sd",
                                                              flag_everything=True))
    generated = tmp_path / "generated"
    reply = answer(gen_responder(taught, generator, classifier, library, generated,
                                 checker=checker))
    assert reply.text and reply.sticker is None
    assert reply.safety_note == "sticker refused: safety checker flagged the image"
    assert list(generated.glob("*.png")) == []  # drawn, refused, deleted: never served


def test_a_diffusion_sticker_the_checker_passes_is_sent(taught, generator, classifier,
                                                        library, tmp_path) -> None:
    checker = SafetyChecker.from_local_path(save_tiny_checker(tmp_path / "sd",
                                                              flag_everything=False))
    generated = tmp_path / "generated"
    reply = answer(gen_responder(taught, generator, classifier, library, generated,
                                 checker=checker))
    assert reply.sticker is not None and reply.sticker.mode == "gen"
    assert reply.sticker.generator == "diffusion" and reply.safety_note is None
    assert is_generated_path(reply.sticker.image_path, generated)


def test_without_a_checker_diffusion_stickers_are_refused_unless_allowed(
        taught, generator, classifier, library, tmp_path) -> None:
    refused = answer(gen_responder(taught, generator, classifier, library, tmp_path / "a"))
    assert refused.sticker is None
    assert "no safety checker configured" in (refused.safety_note or "")
    allowed = answer(gen_responder(taught, generator, classifier, library, tmp_path / "b",
                                   allow_unchecked=True))
    assert allowed.sticker is not None and allowed.sticker.generator == "diffusion"


def test_the_checker_path_must_hold_a_checker(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="STICKERBOT_SAFETY_CHECKER_PATH"):
        SafetyChecker.from_local_path(tmp_path)


# --- the gate itself -----------------------------------------------------------------

@pytest.fixture
def gate(classifier, library, tmp_path) -> StickerGate:
    return StickerGate(library, tmp_path / "generated",
                       crisis=committed_crisis_classifier(str(classifier.encoder.model_path)))


def composed(folder: Path, caption: str, name: str = "ab" * 12) -> StickerChoice:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    Image.new("RGBA", (512, 512), (255, 0, 0, 255)).save(path)
    return StickerChoice(id=f"gen-{name}", emotion=Emotion.happiness, description="x",
                         image_path=str(path), mode="gen", generator="composer",
                         caption=caption)


def test_composer_captions_are_checked(gate) -> None:
    ok, why = gate.review(composed(gate.generated_dir, "Sending hugs"))
    assert ok is not None and why is None
    bad = composed(gate.generated_dir, "go kill yourself", "cd" * 12)
    refused, why = gate.review(bad)
    assert refused is None and why == "caption blocklist (1 word(s))"
    assert not Path(bad.image_path).exists()
    worse = composed(gate.generated_dir, "end it all tonight", "ef" * 12)
    assert gate.review(worse)[1] == "caption read as self_harm"


def test_a_sticker_someone_sent_is_never_sent_back(gate, tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    theirs = store.save(Path(composed(tmp_path / "x", "hi").image_path).read_bytes(), "png")
    for mode in ("ret", "gen", "rag"):
        choice = StickerChoice(id="their-sticker", emotion=Emotion.happiness,
                               description="a cat", image_path=str(theirs), mode=mode)
        sticker, why = gate.review(choice)
        assert sticker is None and why, mode
    assert theirs.exists()  # refusing it deletes nothing of theirs


@pytest.mark.parametrize("path", ["/etc/passwd", "{gen}/../../../etc/passwd",
                                  "{gen}/passwd.png", "{gen}/sub/" + "ab" * 12 + ".png",
                                  "https://evil.example/" + "ab" * 12 + ".png"])
def test_paths_from_anywhere_else_are_refused(gate, path) -> None:
    gate.generated_dir.mkdir(parents=True, exist_ok=True)
    choice = StickerChoice(id="gen-x", emotion=Emotion.neutral, description="",
                           image_path=path.format(gen=gate.generated_dir), mode="gen",
                           generator="composer", caption="hi")
    assert gate.review(choice)[0] is None


def test_a_library_sticker_is_sent_from_the_library_file(gate, library) -> None:
    sticker = library.by_emotion("happiness")[0]
    choice = StickerChoice(id=sticker.id, emotion=sticker.emotion, description="",
                           image_path="/etc/passwd", mode="ret")
    sent, why = gate.review(choice)
    assert why is None and sent.image_path == str(library.png_file(sticker.id))
