"""The LLM judge: parsing and re-asks on a scripted backend, then end to end on SmolLM2."""

from __future__ import annotations

import json
import re

import pytest

from tests.engine.backends.scripted import ScriptedBackend
from training.evaluation.items import EvalItem, Turn
from training.evaluation.judge import (
    ASPECTS,
    judge_ranks,
    judge_scores,
    lenient_score,
    ranking_schema,
    rotations,
    summarize_scores,
)


def _item(item_id="c1", system="pegs", text="I'm so sorry, that sounds hard.", sticker="hug"):
    return EvalItem(item_id=item_id, system=system,
                    context=[Turn("user", "My dog died today.", "a crying cat")], text=text,
                    sticker_id=sticker, sticker_description="a cat giving a warm hug")


def test_valid_answers_are_averaged_over_samples():
    answers = iter([4, 5, 3, 4, 4] * 3)
    backend = ScriptedBackend(lambda c: json.dumps({"score": next(answers), "reason": "kind"}))
    judged = judge_scores(backend, [_item()], samples=5, progress=False)
    assert [j.aspect for j in judged] == list(ASPECTS)
    assert all(len(j.scores) == 5 and j.failures == 0 for j in judged)
    assert len(backend.calls) == 5  # one batch per sample, every aspect in it
    assert "a cat giving a warm hug" in backend.calls[0][1][1]["content"]  # EMP-mm sees it
    assert "warm hug" not in backend.calls[0][0][1]["content"]  # EMP-txt does not


def test_malformed_output_is_reasked_never_scored():
    script = ["I think it is quite good!", "7", '{"score": 9, "reason": "x"}',  # sample 1
              "```json\n{'score': 2, 'reason': 'cold'}\n```"]                    # re-asked
    backend = ScriptedBackend(script)
    [judged] = judge_scores(backend, [_item()], aspects=["emp_txt"], samples=1,
                            max_reasks=3, progress=False)
    assert judged.scores == [2] and judged.reasons == ["cold"]
    reask = backend.calls[1][0]
    assert reask[-2]["content"] == "I think it is quite good!"
    assert "invalid" in reask[-1]["content"]


def test_output_malformed_after_every_reask_is_dropped_and_counted():
    backend = ScriptedBackend(lambda c: "It is fine, maybe a 4 or 5 out of 5.")
    judged = judge_scores(backend, [_item()], samples=2, max_reasks=1, progress=False)
    assert all(j.scores == [] and j.failures == 2 and j.mean is None for j in judged)
    summary = summarize_scores(judged)["pegs"]
    assert summary["emp_txt"] is None and summary["emp_txt_failures"] == 2


def test_template_copied_from_the_prompt_is_malformed():
    from training.evaluation.judge import Score

    for reason in ("<one sentence>", "...", " "):
        with pytest.raises(ValueError):
            Score.model_validate({"score": 3, "reason": reason})
    assert Score.model_validate({"score": 3, "reason": " kind "}).reason == "kind"


def test_lenient_reading_needs_an_explicit_label():
    assert lenient_score("Score: 4. The reply is warm.")["score"] == 4
    assert lenient_score("score = 2 (too short)")["score"] == 2
    assert lenient_score("4") is None
    assert lenient_score("I would give it 5 stars") is None
    assert lenient_score("Score: 4.5") is None


def test_summary_means_per_item_means():
    answers = iter([5, 5, 1, 3])
    backend = ScriptedBackend(lambda c: f'{{"score": {next(answers)}, "reason": "r"}}')
    judged = judge_scores(backend, [_item("a"), _item("b")], aspects=["con"], samples=2,
                          progress=False)
    assert [j.mean for j in judged] == [3.0, 4.0]  # batch order: a, b per sample
    assert summarize_scores(judged)["pegs"]["con"] == pytest.approx(3.5)


def test_ranking_schema_accepts_only_permutations():
    schema = ranking_schema(3)
    assert schema.model_validate({"ranking": ["b", "A", "(C)"]}).ranking == ["B", "A", "C"]
    for bad in (["A", "A", "B"], ["A", "B"], ["A", "B", "D"]):
        with pytest.raises(ValueError):
            schema.model_validate({"ranking": bad})


def test_rotations_put_each_system_at_each_position_once():
    for n in (2, 3, 4):
        orders = rotations(n)
        assert len(orders) == n
        for position in range(n):
            assert sorted(order[position] for order in orders) == list(range(n))


def _three():
    return [_item(system="kind", text="I'm so sorry, that is heartbreaking."),
            _item(system="flat", text="Ok."), _item(system="rude", text="Whatever.")]


def test_position_bias_cancels_over_rotations():
    backend = ScriptedBackend(lambda c: '{"ranking": ["A", "B", "C"], "reason": "first"}')
    result = judge_ranks(backend, _three())
    assert result["mean_rank"] == {"flat": 2.0, "kind": 2.0, "rude": 2.0}
    assert result["judgements"] == 3 and result["failures"] == 0


def _content_judge(conversation):
    options = dict(re.findall(r"^([A-C]): (.*)$", conversation[1]["content"], re.MULTILINE))
    order = sorted(options, key=lambda k: ("sorry" not in options[k], "Ok" not in options[k]))
    return json.dumps({"ranking": order, "reason": "content"})


def test_rank_follows_content_not_position():
    result = judge_ranks(ScriptedBackend(_content_judge), _three() + [_item("solo")])
    assert result["mean_rank"] == {"flat": 2.0, "kind": 1.0, "rude": 3.0}


def test_invalid_ranking_is_reasked():
    script = ['{"ranking": ["A", "A"]}', '{"ranking": ["B", "A"], "reason": "x"}',
              '{"ranking": ["A", "B"], "reason": "x"}']
    items = [_item(system="x", text="Sorry."), _item(system="y", text="Ok.")]
    backend = ScriptedBackend(script)
    result = judge_ranks(backend, items, max_reasks=1)
    assert result["failures"] == 0 and result["judgements"] == 2
    assert len(backend.calls) == 2


@pytest.mark.slow
def test_judge_end_to_end_on_local_smollm2(model_cache):
    from engine.backends.local import LocalBackend
    from engine.llm import ChatLLM, LLMConfig

    backend = LocalBackend(ChatLLM.load(LLMConfig(cache_dir=model_cache)))
    items = [_item("c1"), _item("c2", text="Cool, congrats!", sticker=None)]
    judged = judge_scores(backend, items, samples=2, max_tokens=48, max_reasks=1,
                          progress=False)
    assert len(judged) == 6
    for j in judged:
        assert len(j.scores) + j.failures == 2
        assert all(1 <= s <= 5 for s in j.scores)
        assert len(j.reasons) == len(j.scores)
    ranks = judge_ranks(backend, [_item("c1", system="a"), _item("c1", system="b", text="Ok.")],
                        max_tokens=40, max_reasks=1)
    assert ranks["judgements"] + ranks["failures"] == 2
