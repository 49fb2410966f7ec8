"""The respond task's body on both database backends, with the tiny LLM."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from engine.planning import plan_reply
from engine.reply_model import RetrievalReplyModel
from engine.types import Media, MediaKind, Perception, UserTurn
from storage.memory import SqlMemory
from storage.models import Message
from storage.transcript import TranscriptStore
from tasks.runtime import Runtime, get_runtime, load_on_first_use, reset_runtime
from tasks.settings import TaskSettings
from tests.factories import tiny_responder


class RecordingModel(RetrievalReplyModel):
    """The real retrieval model, keeping the requests it was given."""

    def __init__(self, inner: RetrievalReplyModel) -> None:
        super().__init__(inner.llm, inner.library, inner.index)
        self.requests = []

    def reply(self, requests):
        self.requests.extend(requests)
        return super().reply(requests)


@pytest.fixture
def runtime(database, classifier, library, index, tmp_path) -> Runtime:
    responder = tiny_responder(classifier, library, index)
    responder.model = RecordingModel(responder.model)
    return Runtime(settings=TaskSettings(data_dir=tmp_path), responder=responder, db=database,
                   transcripts=TranscriptStore(database), memory=SqlMemory(database))


def turn(n: int, text: str, *media: Media, user: str = "u1") -> UserTurn:
    return UserTurn(platform="web", chat_id=user, user_id=user, message_id=f"m{n}",
                    text=text, media=list(media))


def sticker_media(library, emotion: str) -> Media:
    sticker = library.by_emotion(emotion)[0]
    return Media(kind=MediaKind.sticker, path=str(library.png_file(sticker.id)), format="png",
                 emoji=sticker.emoji, library_id=sticker.id)


def message_count(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(Message))


def test_redelivered_turn_is_answered_once(runtime: Runtime) -> None:
    first = runtime.handle(turn(1, "I got the job!"))
    again = runtime.handle(turn(1, "I got the job!"))
    assert again.text == first.text
    assert (again.sticker and again.sticker.id) == (first.sticker and first.sticker.id)
    assert message_count(runtime) == 2
    assert len(runtime.responder.model.requests) == 1


def test_earlier_turns_reach_the_prompt_and_reset_clears_them(runtime: Runtime) -> None:
    runtime.handle(turn(1, "my dog is sick"))
    runtime.handle(turn(2, "he will see the vet tomorrow"))
    prompt = runtime.responder.model.requests[-1].messages
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1]["content"] == "my dog is sick"
    runtime.transcripts.reset_conversation("web", "u1", "u1")
    runtime.handle(turn(3, "hello again"))
    assert [m["role"] for m in runtime.responder.model.requests[-1].messages] == ["system", "user"]


def test_text_only_chat_never_gets_stickers_twice_in_a_row_and_never_repeats(
        runtime: Runtime) -> None:
    replies = [runtime.handle(turn(i, text)) for i, text in enumerate(
        ["hi", "I failed my exam", "I studied so hard", "my parents will be upset",
         "maybe I can retake it", "thanks for listening"])]
    has = [r.sticker is not None for r in replies]
    assert not any(a and b for a, b in zip(has, has[1:], strict=False))
    assert sum(has) >= 2
    ids = [r.sticker.id for r in replies if r.sticker]
    assert len(ids) == len(set(ids))


def test_a_user_who_keeps_sending_stickers_gets_them_at_the_target_rate(
        runtime: Runtime, library) -> None:
    replies = [runtime.handle(turn(i, "", sticker_media(library, "happiness")))
               for i in range(10)]
    assert sum(r.sticker is not None for r in replies) == 6


def test_every_sticker_fits_the_planned_emotion(runtime: Runtime, library) -> None:
    texts = ["I'm so angry at my boss", "that smell is revolting", "I'm scared of the dark",
             "my cat died", "wow I did not expect that", "we won the final!", "ok"]
    for i, text in enumerate(texts):
        reply = runtime.handle(turn(i, text, sticker_media(library, "neutral"), user=f"u{i}"))
        assert reply.sticker is not None, text
        plan = plan_reply(Perception(emotion=reply.user_emotion, valence=reply.user_valence,
                                     confidence=1.0))
        assert plan.emotion == reply.planned_emotion
        assert plan.sticker_fits(reply.sticker.emotion), (text, reply.sticker)


def test_stickers_off_is_respected(runtime: Runtime) -> None:
    runtime.transcripts.set_stickers_enabled("web", "u1", False)
    assert runtime.handle(turn(1, "hello!")).sticker is None


def test_a_stored_file_that_went_bad_is_described_not_fatal(runtime: Runtime, tmp_path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    reply = runtime.handle(turn(1, "look", Media(kind=MediaKind.sticker, path=str(broken),
                                                 format="png")))
    assert reply.text


def test_a_racing_copy_returns_the_reply_stored_first(runtime: Runtime, monkeypatch) -> None:
    first = runtime.handle(turn(1, "I got the job!"))
    # A redelivered copy that checked before the first one stored its reply.
    original = runtime.transcripts.find_reply
    answers = iter([None])
    monkeypatch.setattr(runtime.transcripts, "find_reply",
                        lambda t: next(answers, None) or original(t))
    runtime.responder.sticker_rate = 0.0  # so the copy's own reply differs from the first
    copy = runtime.handle(turn(1, "I got the job!"))
    assert copy.text == first.text
    assert (copy.sticker and copy.sticker.id) == (first.sticker and first.sticker.id)
    assert message_count(runtime) == 2


def test_models_load_with_the_settings_passed_down(monkeypatch, tmp_path) -> None:
    """A worker process loads its models with the settings `stickerbot worker` was given,
    not with what the environment says when the first task comes."""
    reset_runtime()
    with pytest.raises(RuntimeError, match="init_runtime"):
        get_runtime()
    loaded = SimpleNamespace(db=SimpleNamespace(dispose=lambda: None))
    loaded_with = []

    def load(settings: TaskSettings, responder=None) -> SimpleNamespace:
        loaded_with.append(settings)
        return loaded

    monkeypatch.setattr(Runtime, "load", load)
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path / "environment"))
    passed = TaskSettings(data_dir=tmp_path / "passed")
    load_on_first_use(passed)
    try:
        assert get_runtime() is loaded and get_runtime() is loaded
    finally:
        reset_runtime()
    assert loaded_with == [passed]
