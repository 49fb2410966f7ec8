"""`stickerbot evaluate` end to end: a test split with predictions, and web-chat transcripts."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.engine.backends.scripted import ScriptedBackend
from training.evaluation.run import EvaluateOptions, evaluate, items_from_split


def _judge(conversation):
    content = conversation[-1]["content"]
    if "Candidate replies" in content:
        labels = re.findall(r"^([A-J]): ", content, re.MULTILINE)
        return json.dumps({"ranking": labels, "reason": "in order"})
    return '{"score": 4, "reason": "warm"}'


def _varied_judge(conversation):
    """Scores that differ per conversation (by the user's last message), so that their
    correlation with human scores is defined."""
    dialogue = conversation[-1]["content"].split("Assistant's reply:")[0]
    last_user = [line for line in dialogue.splitlines() if line.startswith("User: ")][-1]
    score = 5 if "job" in last_user else 2 if "cat" in last_user else 3
    return json.dumps({"score": score, "reason": "by topic"})


@pytest.fixture(scope="module")
def split(tmp_path_factory, library):
    root = tmp_path_factory.mktemp("split")
    happy, sad = library.by_emotion("happiness")[0].id, library.by_emotion("sadness")[0].id
    sticker = {"image": f"stickers/{sad}.png", "description": "a sad face", "emotion": "sadness",
               "recommendation": "", "origin_anno": ""}
    sessions = [
        {"conversation": [
            {"turn": 0, "user_message": "I failed my exam.", "user_sticker": sticker,
             "system_message": "I'm so sorry, that must hurt. You can try again.",
             "system_sticker": sticker},
            {"turn": 1, "user_message": "Thanks, I will study harder.", "user_sticker": None,
             "system_message": "That's the spirit, I believe in you!", "system_sticker": None}],
         "user_persona": "a student", "user_status": "sad"},
        {"conversation": [
            {"turn": 0, "user_message": "I got the job!", "user_sticker": None,
             "system_message": "Congratulations, that is wonderful news!",
             "system_sticker": dict(sticker, image=f"x/{happy}.png")}],
         "user_persona": "a job seeker", "user_status": "happy"},
    ]
    (root / "test.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sessions))
    predictions = [
        {"session": 0, "turn": 0, "system": "pegs", "text": "I'm sorry, that must hurt.",
         "sticker_id": sad},
        {"session": 0, "turn": 1, "system": "pegs", "text": "I believe in you!"},
        {"session": 1, "turn": 0, "system": "pegs", "text": "Congratulations, wonderful news!",
         "sticker_id": happy},
        {"session": 0, "turn": 0, "system": "baseline", "text": "Ok."},
        {"session": 0, "turn": 1, "system": "baseline", "text": "Ok."},
        {"session": 1, "turn": 0, "system": "baseline", "text": "Ok.", "sticker_id": sad},
    ]
    (root / "pred.jsonl").write_text("".join(json.dumps(p) + "\n" for p in predictions))
    return root


def test_split_items_carry_context_and_references(split, library):
    items = items_from_split(split / "test.jsonl", split / "pred.jsonl", library)
    first = items[1]
    assert first.item_id == "0:1" and first.system == "pegs"
    assert [t.role for t in first.context] == ["user", "assistant", "user"]
    assert first.context[0].sticker == "a sad face"
    assert first.reference_text == "That's the spirit, I believe in you!"
    assert items[0].reference_sticker_id == library.by_emotion("sadness")[0].id
    assert items[0].sticker_description
    bad = split / "bad.jsonl"
    bad.write_text('{"session": 5, "turn": 0, "text": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        items_from_split(split / "test.jsonl", bad)


def test_evaluate_split_writes_json_markdown_and_plots(split, library, encoder, tmp_path):
    items = items_from_split(split / "test.jsonl", split / "pred.jsonl", library)
    results = evaluate(EvaluateOptions(items=items, out=tmp_path, library=library,
                                       text_encoder=encoder, judge_backend=ScriptedBackend(_judge),
                                       judge_samples=2, source={"split": "test"}))
    pegs, base = results["systems"]["pegs"], results["systems"]["baseline"]
    assert pegs["text"]["bleu_1"] > base["text"]["bleu_1"]
    assert 0 < pegs["text"]["bertscore_minilm_f1"] <= 1
    assert pegs["multimodal"]["freq"] == pytest.approx(2 / 3)
    assert pegs["judge"]["emp_txt"] == 4.0 and pegs["judge"]["con_failures"] == 0
    assert results["rank"]["mean_rank"] == {"baseline": 1.5, "pegs": 1.5}  # rotations
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["systems"]["pegs"]["text"]["meteor"] == pytest.approx(pegs["text"]["meteor"])
    report = (tmp_path / "report.md").read_text()
    for heading in ("Text metrics", "Multimodal metrics", "LLM judge", "| pegs |", "f-MMr"):
        assert heading in report
    for png in ("text_metrics.png", "multimodal.png", "judge.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_web_chat_transcripts_end_to_end(tmp_path, monkeypatch, classifier, library, index,
                                         pack_root, encoder):
    from bots.web.app import create_app
    from settings import Settings
    from stickerbot import main
    from storage.db import Database
    from storage.models import Message
    from tasks.runtime import init_runtime, reset_runtime
    from tasks.submit import TurnSubmitter
    from tests.factories import tiny_responder
    from training.evaluation.run import evaluate_transcripts, items_from_transcripts

    (tmp_path / "stickers").symlink_to(pack_root, target_is_directory=True)
    monkeypatch.setenv("STICKERBOT_DATA_DIR", str(tmp_path))
    settings = Settings()
    reset_runtime()
    init_runtime(settings, tiny_responder(classifier, library, index, sticker_rate=1.0))
    submitter = TurnSubmitter(settings)
    try:
        with TestClient(create_app(settings, submitter, library)) as client:
            client.get("/")  # the page's identity cookie, as a browser gets it
            for text in ("I got the job!", "My cat is sick and I am worried.", "Thanks a lot"):
                response = client.post("/api/chat/messages", json={"text": text})
                assert response.status_code == 200, response.text
    finally:
        submitter.close()
        reset_runtime()

    db = Database(settings.resolved_database_url)
    items = items_from_transcripts(db, platform="web", library=library)
    assert len(items) == 3
    assert items[1].context[-1].text == "My cat is sick and I am worried."
    assert items[1].context[0].text == "I got the job!"
    assert all(i.system == "tiny+ret" and i.meta["platform"] == "web" for i in items)
    assert items_from_transcripts(db, platform="telegram") == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert items_from_transcripts(db, since=future) == []
    assert items_from_transcripts(db, model_version="other") == []

    results = evaluate(EvaluateOptions(items=items, out=tmp_path / "judged", library=library,
                                       text_encoder=encoder, judge_backend=ScriptedBackend(_judge),
                                       judge_samples=1))
    scores = results["systems"]["tiny+ret"]
    assert "text" not in scores  # logged replies have no reference
    assert scores["multimodal"]["freq"] > 0 and 0 <= scores["multimodal"]["mmr"] <= 1
    assert scores["judge"]["emp_mm"] == 4.0

    out = tmp_path / "cli"
    assert main(["evaluate", "--transcripts", "--platform", "web", "--model-version",
                 "tiny+ret", "--since", "2000-01-01", "--out", str(out),
                 "--questionnaire", str(tmp_path / "human")]) == 0
    assert (tmp_path / "human" / "questionnaire.csv").read_text().count("\nq0") == 3
    saved = json.loads((out / "results.json").read_text())
    assert saved["systems"]["tiny+ret"]["n"] == 3
    assert saved["source"]["platform"] == "web"
    assert "Multimodal metrics" in (out / "report.md").read_text()
    from sqlalchemy import select

    from storage.models import EvaluationScore

    with db.session() as s:
        stored = {r.metric: r.value for r in s.execute(select(EvaluationScore)).scalars()}
    assert stored["multimodal.freq"] == pytest.approx(saved["systems"]["tiny+ret"]
                                                      ["multimodal"]["freq"])
    assert main(["evaluate", "--transcripts", "--platform", "discord", "--out", str(out)]) == 1

    # Per-reply rows, for the review dashboard: one MMr per stickered logged reply.
    with db.session() as s:
        per_reply = s.execute(select(EvaluationScore).where(
            EvaluationScore.message_id.is_not(None))).scalars().all()
        bot_ids = set(s.execute(select(Message.id).where(Message.role == "bot")).scalars())
    assert {r.metric for r in per_reply} == {"multimodal.mmr"}
    assert {r.message_id for r in per_reply} <= bot_ids and len(per_reply) == len(
        [i for i in saved["item_scores"] if i["metric"] == "multimodal.mmr"]) > 0

    # The dashboard's entry point, with a judge: per-reply judge means are stored too.
    run_id, judged = evaluate_transcripts(db, settings, platform="web", bertscore=False,
                                          judge_backend=ScriptedBackend(_varied_judge),
                                          judge_samples=1, out=tmp_path / "dashboard")
    assert judged["systems"]["tiny+ret"]["judge"]["con"] == pytest.approx(10 / 3)
    with db.session() as s:
        judge_rows = s.execute(select(EvaluationScore).where(
            EvaluationScore.run_id == run_id, EvaluationScore.metric == "judge.emp_txt",
            EvaluationScore.message_id.is_not(None))).scalars().all()
    assert sorted(r.value for r in judge_rows) == [2.0, 3.0, 5.0]
    with pytest.raises(LookupError):
        evaluate_transcripts(db, settings, platform="discord")

    # Raters fill the questionnaire; `evaluate-human` reports ICC and correlations with
    # the per-reply automatic metrics of that evaluation.
    sheet = tmp_path / "human" / "questionnaire.csv"
    with open(sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    for rater, offset in (("r1", 0), ("r2", 1)):
        with open(tmp_path / f"{rater}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for n, row in enumerate(rows):
                writer.writerow(dict(row, text_empathy=str(1 + n + offset),
                                     fluency=str(5 - n)))
    assert main(["evaluate-human", "--key", str(tmp_path / "human" / "key.json"),
                 "--filled", f"r1={tmp_path / 'r1.csv'}", "--filled",
                 f"r2={tmp_path / 'r2.csv'}", "--results",
                 str(tmp_path / "dashboard" / "results.json")]) == 0
    report = json.loads((tmp_path / "dashboard" / "human.json").read_text())
    assert report["agreement"]["text_empathy"]["icc3_1"] == pytest.approx(1.0)
    pairs = {(r["metric"], r["criterion"]): r for r in report["correlations"]}
    assert abs(pairs[("judge.emp_txt", "text_empathy")]["spearman"]) <= 1
    assert ("judge.con", "fluency") in pairs
    assert "ICC(2,1)" in (tmp_path / "dashboard" / "human.md").read_text()
    with pytest.raises(SystemExit, match="RATER=FILE"):
        main(["evaluate-human", "--key", str(tmp_path / "human" / "key.json"), "--filled", "r1"])
