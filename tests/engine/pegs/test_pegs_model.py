"""PegsModel on the tiny profile: config, input splicing, trainable parts, the three losses."""

from __future__ import annotations

import pytest
import torch

from engine.pegs import PegsConfig, PegsModel
from engine.pegs.heads import RetrievalHeads
from engine.pegs.tiny import tiny_vit
from engine.pegs.vision import preprocess
from tests.engine.pegs.pegs_support import images, tiny_pegs, trainable
from tests.factories import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def model() -> PegsModel:
    return tiny_pegs().eval()


# --- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [
    PegsConfig.tiny(), PegsConfig.cpu_small(), PegsConfig.custom("tiny", lambda_ret=0.5),
    PegsConfig.paper("/models/vicuna-7b", "/models/blip2-opt-2.7b", "/models/sd-1.5"),
])
def test_config_json_round_trip(config: PegsConfig) -> None:
    assert PegsConfig.from_json(config.to_json()) == config


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="num_ret_tokens"):
        PegsConfig.tiny(num_ret_tokens=4)  # r = 4 leaves nothing for the mapper
    with pytest.raises(ValueError, match="unknown PegsConfig fields"):
        PegsConfig.from_dict({**PegsConfig.tiny().to_dict(), "bogus": 1})
    with pytest.raises(FileNotFoundError, match="PegsConfig.vision"):
        PegsModel.from_config(PegsConfig.tiny(vision="/nonexistent/clip"))


# --- inputs ----------------------------------------------------------------------------------
def test_tokens_added_once(model: PegsModel) -> None:
    tok = model.tokenizer
    assert tok.convert_ids_to_tokens(model.img_token_ids) == ["[IMG1]", "[IMG2]", "[IMG3]",
                                                              "[IMG4]"]
    assert tok.convert_ids_to_tokens(model.image_token_id) == "<image>"
    assert model.llm.get_input_embeddings().weight.shape[0] >= len(tok)
    assert model.tokenize("hi <image> !").count(model.image_token_id) == 32


def test_forward_and_embed_shapes(model: PegsModel) -> None:
    cfg = model.config
    prompts = ["hello <image> my dog <image> !", "hi <image>"]
    targets = [f"i am happy {model.sticker_text} wow", f"ok {model.sticker_text}"]
    batch = model.encode(prompts, targets)
    embeds = model.embed_inputs(batch["input_ids"], images(3))
    b, t = batch["input_ids"].shape
    assert embeds.shape == (b, t, 64)
    out = model(**batch, images=images(3), sticker_features=torch.randn(2, 32),
                gen_targets=torch.randn(2, 77, cfg.gen_dim))
    assert out.logits.shape == (b, t, len(model.tokenizer))
    assert out.ret_embeddings.shape == (2, cfg.ret_dim)
    assert torch.allclose(out.ret_embeddings.norm(dim=-1), torch.ones(2))
    assert out.gen_embeddings.shape == (2, cfg.gen_seq_len, cfg.gen_dim)
    assert out.sticker_embeddings.shape == (2, cfg.ret_dim)
    for part in (out.loss, out.lm_loss, out.ret_loss, out.gen_loss):
        assert part.ndim == 0 and torch.isfinite(part)
    expected = (cfg.lambda_lm * out.lm_loss + cfg.lambda_gen * out.gen_loss
                + cfg.lambda_ret * out.ret_loss)
    assert torch.allclose(out.loss, expected)


def test_losses_are_optional(model: PegsModel) -> None:
    plain = model(**model.encode(["hello my dog"]))
    assert plain.loss is None and plain.ret_embeddings is None and plain.gen_embeddings is None
    only_lm = model(**model.encode(["hello"], [f"hi {model.sticker_text}"]))
    assert only_lm.ret_loss is None and only_lm.gen_loss is None
    assert torch.equal(only_lm.loss, only_lm.lm_loss)
    assert only_lm.ret_embeddings.shape == (1, model.config.ret_dim)


def test_interleaved_images_are_spliced_in_order(model: PegsModel) -> None:
    """Two images between text segments (and a second row with left padding): placeholder
    runs hold exactly each image's projected queries, text positions the token embeddings."""
    pics = images(3)
    batch = model.encode(["hello <image> my dog <image> is happy", "<image> wow"],
                         padding_side="left")
    ids = batch["input_ids"]
    with torch.no_grad():
        embeds = model.embed_inputs(ids, pics)
        queries = model.vision(preprocess(pics, 32))  # [3, 32, H]
        tokens = model.llm.get_input_embeddings()(ids)
    slots = ids == model.image_token_id
    assert int(slots.sum()) == 3 * 32
    assert torch.equal(embeds[slots], queries.reshape(-1, queries.shape[-1]))
    assert torch.equal(embeds[~slots], tokens[~slots])
    # The runs sit where the placeholders were written, in order.
    row0 = slots[0].nonzero().flatten()
    assert torch.equal(embeds[0, row0[:32]], queries[0])
    assert torch.equal(embeds[0, row0[32:]], queries[1])
    assert row0[32] - row0[31] > 1  # text between the two images
    assert torch.equal(embeds[1, slots[1]], queries[2])
    with pytest.raises(ValueError, match="placeholder"):
        model.embed_inputs(ids, pics[:2])


def test_incomplete_sticker_block_is_an_error(model: PegsModel) -> None:
    with pytest.raises(ValueError, match=r"\[IMG1\]"):
        model(**model.encode(["hello [IMG1] [IMG2] dog"]))


# --- trainable parameters --------------------------------------------------------------------
def test_exactly_the_intended_parameters_train() -> None:
    # Components passed in (diffusers style): the tests' own tiny Llama and tokenizer.
    tokenizer = tiny_tokenizer()
    llm = tiny_model(len(tokenizer))
    model = PegsModel(PegsConfig.tiny(), llm, tokenizer, tiny_vit())
    groups = model.parameter_categories()
    prefix = "llm.base_model.model."
    assert set(groups["lora"]) == {
        f"{prefix}model.layers.{i}.self_attn.{m}.lora_{ab}.default.weight"
        for i in range(2) for m in ("q_proj", "v_proj") for ab in "AB"}
    assert set(groups["img_rows"]) == {
        f"{prefix}model.embed_tokens.token_adapter.trainable_tokens_delta.default",
        f"{prefix}lm_head.token_adapter.trainable_tokens_delta.default"}
    assert set(groups["qformer"]) == {"vision.query_tokens"} | {
        f"vision.qformer.{n}" for n, _ in model.vision.qformer.named_parameters()}
    assert set(groups["projection"]) == {"vision.proj.weight", "vision.proj.bias"}
    assert set(groups["retrieval"]) == {"ret.text_proj.weight", "ret.text_proj.bias",
                                        "ret.sticker_proj.weight", "ret.sticker_proj.bias",
                                        "ret.logit_scale"}
    assert set(groups["mapper"]) == {f"mapper.{n}" for n, _ in model.mapper.named_parameters()}
    assert set(model.trainable_parameter_names()) == {n for g in groups.values() for n in g}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert all(n.startswith(("llm.", "vision.encoder.")) for n in frozen)
    assert not any(p.requires_grad for p in model.vision.encoder.parameters())
    base = [p for n, p in model.llm.named_parameters()
            if "lora_" not in n and "trainable_tokens" not in n]
    assert base and not any(p.requires_grad for p in base)


def test_optimiser_step_changes_only_img_rows() -> None:
    model = tiny_pegs()
    vocab = model.llm.get_input_embeddings().weight.shape[0]
    hidden = model.llm.get_input_embeddings().weight.shape[1]

    def tables() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():  # the effective (merged) input and output tables
            return (model.llm.get_input_embeddings()(torch.arange(vocab)).clone(),
                    model.llm.get_output_embeddings()(torch.eye(hidden)).t().clone())

    before_in, before_out = tables()
    inputs = model.encode(["hello my dog is sad"], [f"so sorry {model.sticker_text} hug"])
    optimizer = torch.optim.Adam(trainable(model), lr=1e-2)
    model.train()
    model(**inputs).loss.backward()
    optimizer.step()
    after_in, after_out = tables()
    img = torch.zeros(vocab, dtype=torch.bool)
    img[model.img_token_ids] = True
    for before, after in ((before_in, after_in), (before_out, after_out)):
        assert torch.equal(before[~img], after[~img])
        assert not torch.equal(before[img], after[img])


# --- learning --------------------------------------------------------------------------------
def test_one_step_lowers_each_loss() -> None:
    """One Adam step on the total loss lowers L_lm, L_ret and L_gen on a fixed batch
    (fixed seeds; a single step, no retries)."""
    model = tiny_pegs(seed=3)
    cfg = model.config
    gen = torch.Generator().manual_seed(5)
    prompts = [f"my {w} is sad <image>" for w in ("dog", "cat", "bird", "fish")]
    targets = [f"so sorry {model.sticker_text} hug" for _ in prompts]
    batch = model.encode(prompts, targets)
    pics = images(4)
    features = torch.randn(4, cfg.sticker_feature_dim, generator=gen)
    gen_targets = torch.randn(4, cfg.gen_seq_len, cfg.gen_dim, generator=gen)
    kwargs = dict(images=pics, sticker_features=features, gen_targets=gen_targets)
    optimizer = torch.optim.Adam(trainable(model), lr=1e-3)
    model.train()
    first = model(**batch, **kwargs)
    optimizer.zero_grad()
    first.loss.backward()
    optimizer.step()
    with torch.no_grad():
        second = model(**batch, **kwargs)
    for name in ("lm_loss", "ret_loss", "gen_loss", "loss"):
        assert getattr(second, name) < getattr(first, name), name


def test_library_loss_is_cross_entropy_over_the_library() -> None:
    torch.manual_seed(0)
    heads = RetrievalHeads(llm_hidden=8, feature_dim=6, ret_dim=4)
    text = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    library = torch.nn.functional.normalize(torch.randn(10, 4), dim=-1)
    targets = torch.tensor([2, 7, 2])
    logits = heads.scale() * text @ library.t()
    expected = -torch.log_softmax(logits, dim=1)[torch.arange(3), targets].mean()
    assert torch.allclose(heads.library_loss(text, library, targets), expected)
    # The right sticker scored higher lowers the loss.
    closer = library.clone()
    closer[7] = text[1]
    assert heads.library_loss(text, closer, targets) < heads.library_loss(text, library, targets)
