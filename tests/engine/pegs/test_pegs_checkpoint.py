"""Checkpoints: trained weights only, exact reload, versions and hot switching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from engine.pegs import (
    CheckpointWatcher,
    PegsConfig,
    PegsModel,
    latest_version,
    list_versions,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    set_current,
)
from engine.pegs.tiny import tiny_llm, tiny_tokenizer, tiny_vit
from tests.engine.pegs.pegs_support import (
    images,
    sticker_features,
    tiny_pegs,
    train_retrieval,
    trainable,
)


@pytest.fixture(scope="module")
def trained() -> PegsModel:
    model = tiny_pegs()
    train_retrieval(model, sticker_features(32), steps=20)
    # Move the parts retrieval does not touch too, so a missed tensor would show.
    with torch.no_grad():
        for p in trainable(model):
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def outputs(model: PegsModel) -> dict[str, torch.Tensor]:
    batch = model.encode(["hello <image> my dog <image> is sad"],
                         [f"so sorry {model.sticker_text}"])
    with torch.no_grad():
        out = model(**batch, images=images(2), sticker_features=sticker_features(32)[:1])
    return {"logits": out.logits, "ret": out.ret_embeddings, "gen": out.gen_embeddings,
            "stickers": out.sticker_embeddings}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_save_then_load_is_exact(trained: PegsModel, tmp_path: Path) -> None:
    folder = save_checkpoint(trained, tmp_path, "v1", {"steps": 20})
    assert folder == tmp_path / "v1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "heads.safetensors",
        "pegs_config.json"]
    expected = outputs(trained)
    # Rebuilt from the saved config (the tiny backbones are seeded) ...
    assert_same(expected, outputs(load_checkpoint(tmp_path)))
    # ... and onto backbones passed in.
    tokenizer = tiny_tokenizer()
    loaded = load_checkpoint(folder, llm=tiny_llm(len(tokenizer)), tokenizer=tokenizer,
                             vision=tiny_vit())
    assert_same(expected, outputs(loaded))
    assert loaded.checkpoint_version == "v1" and loaded.checkpoint_meta == {"steps": 20}


def test_checkpoint_holds_no_backbone_weights(trained: PegsModel, tmp_path: Path) -> None:
    folder = save_checkpoint(trained, tmp_path, "v1")
    keys = []
    for name in ("adapter_model.safetensors", "heads.safetensors"):
        with safe_open(str(folder / name), framework="pt") as f:
            keys += [(k, f.get_slice(k).get_shape()) for k in f.keys()]
    assert not any("base_layer" in k or k.endswith(("q_proj.weight", "embed_tokens.weight"))
                   or k.startswith("vision.encoder") for k, _ in keys)
    vocab = len(trained.tokenizer)
    assert not any(shape and shape[0] == vocab for _, shape in keys)  # no full tables
    trained_bytes = 4 * sum(p.numel() for p in trainable(trained))
    folder_bytes = sum(p.stat().st_size for p in folder.iterdir())
    assert folder_bytes < trained_bytes + 64_000  # the trained tensors + headers and JSON
    backbone = trained.llm.get_base_model()
    llm_bytes = sum(t.numel() * t.element_size() for n, t in backbone.state_dict().items()
                    if "lora_" not in n and "token_adapter" not in n)
    adapter_bytes = (folder / "adapter_model.safetensors").stat().st_size
    assert adapter_bytes < llm_bytes / 10
    print(f"tiny: adapter {adapter_bytes} B, folder {folder_bytes} B, LLM {llm_bytes} B")


def test_versions_current_and_watcher(tmp_path: Path) -> None:
    first = tiny_pegs(seed=1).eval()
    second = tiny_pegs(seed=2).eval()
    assert latest_version(tmp_path) is None
    save_checkpoint(first, tmp_path, "v1")
    watcher = CheckpointWatcher(tmp_path)
    assert watcher.version == "v1" and not watcher.changed()
    save_checkpoint(second, tmp_path, "v2")
    assert (tmp_path / "CURRENT").read_text().strip() == "v2"
    assert latest_version(tmp_path) == "v2" and list_versions(tmp_path) == ["v1", "v2"]
    assert watcher.changed() and watcher.version == "v2" and not watcher.changed()
    # A worker swaps the new weights into the model it already holds.
    live = tiny_pegs(seed=9).eval()
    assert_same(outputs(second), outputs(load_weights(live, watcher.path)))
    set_current(tmp_path, "v1")
    assert watcher.changed() and watcher.path == tmp_path / "v1"
    assert_same(outputs(first), outputs(load_weights(live, watcher.path)))
    assert live.checkpoint_version == "v1"
    with pytest.raises(FileExistsError):
        save_checkpoint(first, tmp_path, "v1")
    with pytest.raises(ValueError):
        save_checkpoint(first, tmp_path, "../escape")
    with pytest.raises(FileNotFoundError):
        set_current(tmp_path, "v3")
    # A checkpoint of another shape is refused rather than half loaded.
    other = PegsModel.from_config(PegsConfig.tiny(num_img_tokens=3))
    with pytest.raises(ValueError, match="num_img_tokens"):
        load_weights(other, tmp_path / "v1")


def test_a_stage_saves_only_what_it_trained_and_loads_on_its_base(trained: PegsModel,
                                                                    tmp_path: Path) -> None:
    save_checkpoint(trained, tmp_path, "perception", categories=["qformer", "projection"])
    assert not (tmp_path / "perception" / "adapter_model.safetensors").exists()
    save_checkpoint(trained, tmp_path, "alignment", categories=["retrieval", "img_rows"],
                    base="perception")
    with safe_open(str(tmp_path / "alignment" / "heads.safetensors"), "pt") as f:
        assert {k.split(".")[0] for k in f.keys()} == {"ret"}
    fresh = tiny_pegs(seed=5)
    mapper_before = fresh.mapper.fc_in.weight.clone()
    lora_before = {n: p.clone() for n, p in fresh.named_parameters() if "lora_" in n}
    load_weights(fresh, tmp_path / "alignment")
    assert fresh.trained_categories == ["img_rows", "projection", "qformer", "retrieval"]
    assert torch.equal(fresh.vision.proj.weight, trained.vision.proj.weight)
    assert torch.equal(fresh.ret.text_proj.weight, trained.ret.text_proj.weight)
    delta = [n for n, _ in fresh.named_parameters() if "trainable_tokens_delta" in n][0]
    assert torch.equal(dict(fresh.named_parameters())[delta],
                       dict(trained.named_parameters())[delta])
    assert torch.equal(fresh.mapper.fc_in.weight, mapper_before)  # not in the chain
    assert all(torch.equal(p, lora_before[n]) for n, p in fresh.named_parameters()
               if "lora_" in n)
    with pytest.raises(FileNotFoundError):
        save_checkpoint(trained, tmp_path, "orphan", base="nothere")
