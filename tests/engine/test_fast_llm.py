"""The CTranslate2 engine (engine/fast_llm.py) on the real SmolLM2-135M, converted once into
the shared model cache: choice of engine, the cached conversion, replies as ChatLLM gives
them, and log-likelihoods that agree with the torch model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from engine.fast_llm import (
    FastChatLLM,
    ct2_dir,
    load_chat_llm,
    makespan,
    pick_engine,
    plan_sub_batches,
    sub_batch_seconds,
)
from engine.llm import ChatLLM, LLMConfig, local_model_dir
from engine.settings import EngineSettings

pytestmark = pytest.mark.slow
SAD = [{"role": "system", "content": "You are a caring friend. Answer in one sentence."},
       {"role": "user", "content": "I failed my exam today."}]


@pytest.fixture(scope="module")
def fast(model_cache: Path) -> FastChatLLM:
    return FastChatLLM.load(LLMConfig(cache_dir=model_cache, temperature=0.0))


@pytest.fixture(scope="module")
def slow(model_cache: Path) -> ChatLLM:
    return ChatLLM.load(LLMConfig(cache_dir=model_cache, temperature=0.0))


def test_auto_picks_ct2_on_a_cpu_machine_and_torch_when_told() -> None:
    assert EngineSettings().llm_engine == "auto"
    assert pick_engine("auto") == ("torch" if torch.cuda.is_available() else "ct2")
    assert pick_engine("torch") == "torch" and pick_engine("ct2") == "ct2"
    with pytest.raises(ValueError, match="choose one of"):
        pick_engine("onnx")


def test_the_conversion_is_made_once_and_stamped(fast: FastChatLLM, model_cache: Path) -> None:
    source = local_model_dir(LLMConfig(cache_dir=model_cache))
    target = ct2_dir(source, model_cache)
    assert (target / "model.bin").is_file() and (target / "source.json").is_file()
    made = (target / "model.bin").stat().st_mtime_ns
    again = FastChatLLM.load(LLMConfig(cache_dir=model_cache))
    assert (target / "model.bin").stat().st_mtime_ns == made  # read, not converted again
    assert again.version == fast.version == "smollm2-135m-instruct-q4_1-ct2"


def test_replies_follow_chatllm_rules(fast: FastChatLLM) -> None:
    budget = fast.config.max_new_tokens
    [reply, cut] = fast.generate([SAD, SAD[-1:]])
    assert reply.text and 0 < reply.new_tokens <= budget
    [short] = fast.generate([SAD], max_new_tokens=6)  # cut back to a whole sentence
    assert short.new_tokens == 6 and reply.text.startswith(short.text)
    assert fast.generate([SAD])[0].text == reply.text  # greedy: the same every time
    assert fast.chat(SAD) == reply.text and cut.text


def test_a_batch_split_among_replicas_answers_each_conversation_as_alone(
        fast: FastChatLLM) -> None:
    happy = [SAD[0], {"role": "user", "content": "I passed my driving test!"}]
    alone = [fast.generate([c])[0].text for c in (SAD, happy)]
    assert fast.replicas == (2 if os.cpu_count() == 2 else fast.replicas)
    batch = fast.generate([SAD, happy, SAD, happy, SAD])
    assert [g.text for g in batch] == alone * 2 + alone[:1]  # in order, greedy


def test_sub_batches_group_prompts_of_similar_length() -> None:
    lengths = [229, 119, 184, 131, 169, 129, 182]
    groups = plan_sub_batches(lengths, replicas=2, new_tokens=32)
    assert sorted(i for g in groups for i in g) == list(range(7))  # each prompt once
    spans = [[lengths[i] for i in g] for g in groups]
    # Neighbours in length share a sub-batch: no group reaches over another's lengths.
    assert all(max(a) <= min(b) or max(b) <= min(a) for a in spans for b in spans if a is not b)
    one_batch = sub_batch_seconds(lengths, 32)
    halves = makespan([sub_batch_seconds(sorted(lengths)[:4], 32),
                       sub_batch_seconds(sorted(lengths)[4:], 32)], 2)
    planned = makespan([sub_batch_seconds(s, 32) for s in spans], 2)
    assert planned <= halves < one_batch
    # Prompts of one length are read at once: one sub-batch per replica, not one per row.
    assert len(plan_sub_batches([150] * 8, replicas=2, new_tokens=32)) == 2
    assert plan_sub_batches([150], replicas=2, new_tokens=32) == [[0]]


def test_int8_scores_text_as_the_torch_model_does(fast: FastChatLLM, slow: ChatLLM) -> None:
    tokenizer = slow.tokenizer
    prompt = tokenizer(slow._template(SAD), add_special_tokens=False).input_ids
    reply = slow.generate([SAD])[0].text
    target = tokenizer(reply, add_special_tokens=False).input_ids
    ids = torch.tensor([prompt + target])
    with torch.inference_mode():
        logits = slow.model(input_ids=ids).logits[0, len(prompt) - 1:-1]
    reference = float(torch.log_softmax(logits, -1).gather(
        1, torch.tensor(target)[:, None]).sum())
    assert fast.log_likelihood(prompt, target) == pytest.approx(reference, rel=0.1, abs=1.0)


def test_load_chat_llm_gives_the_engine_asked_for(model_cache: Path) -> None:
    config = LLMConfig(cache_dir=model_cache)
    assert type(load_chat_llm(config, "torch")) is ChatLLM
    assert isinstance(load_chat_llm(config, "ct2"), FastChatLLM)


def test_the_make_step_prepares_the_tuned_copy_and_pegs_only_when_it_answers(
        model_cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from engine.fast_llm import main
    from engine.tuned_llm import adapter_digest

    monkeypatch.setenv("STICKERBOT_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("STICKERBOT_LLM_ENGINE", "ct2")
    main()  # what `make models` runs: the default answers with the tuned LLM
    [tuned] = [Path(line) for line in capsys.readouterr().out.split()]
    assert tuned.name == f"SmolLM2-135M-Instruct.Q4_1-tuned-{adapter_digest()}-ct2-int8"
    assert (tuned / "model.bin").is_file() and tuned.parent == model_cache
    monkeypatch.setenv("STICKERBOT_REPLY_MODEL", "pegs")
    monkeypatch.setenv("STICKERBOT_LLM_TUNED", "false")
    main()  # PEGS answers: the plain copy and PEGS's own (cached: this only checks them)
    plain, pegs = [Path(line) for line in capsys.readouterr().out.split()]
    assert plain.name == "SmolLM2-135M-Instruct.Q4_1-ct2-int8"
    assert pegs.name.startswith("pegs-") and pegs.parent == plain.parent == model_cache
    assert (plain / "model.bin").is_file() and (pegs / "model.bin").is_file()


def test_a_model_ctranslate2_cannot_convert_runs_on_torch_under_auto(tmp_path: Path) -> None:
    from transformers import MambaConfig, MambaForCausalLM

    from tests.factories import tiny_tokenizer

    tokenizer = tiny_tokenizer()  # a real architecture CTranslate2 has no converter for
    MambaForCausalLM(MambaConfig(vocab_size=len(tokenizer), hidden_size=16,
                                 num_hidden_layers=1, state_size=4, eos_token_id=2,
                                 pad_token_id=3, bos_token_id=1)).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    config = LLMConfig(path=str(tmp_path / "m"), cache_dir=tmp_path / "cache", max_new_tokens=3)
    llm = load_chat_llm(config, "auto")
    assert type(llm) is ChatLLM and llm.chat([{"role": "user", "content": "hello"}])
    with pytest.raises(ValueError, match="No conversion is registered"):
        load_chat_llm(config, "ct2")
