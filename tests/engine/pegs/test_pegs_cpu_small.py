"""The default `cpu-small` profile on the real SmolLM2-135M-Instruct and sticker encoder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.pegs import PegsConfig, PegsModel, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> PegsModel:
    torch.manual_seed(0)
    return PegsModel.from_config(PegsConfig.cpu_small()).eval()


def test_cpu_small_builds_trains_the_small_parts_and_answers(model: PegsModel,
                                                             tmp_path: Path) -> None:
    cfg = model.config
    groups = model.parameter_categories()
    assert all(groups[c] for c in groups)
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    trained = sum(sizes[n] for names in groups.values() for n in names)
    assert 5e6 < trained < 0.1 * sum(sizes.values())
    assert sum(sizes[n] for n in groups["img_rows"]) == cfg.num_img_tokens * 576  # tied head

    sticker = Image.new("RGBA", (120, 100), (250, 200, 0, 255))
    chat = [{"role": "user", "content": "I lost my job today <image>"}]
    batch = model.encode([model.format_prompt(chat)],
                         [f"I'm so sorry. {model.sticker_text} Hang in there!"])
    features = model.sticker_features([sticker])
    assert features.shape == (1, cfg.sticker_feature_dim)
    started = time.perf_counter()
    with torch.no_grad():
        out = model(**batch, images=[sticker], sticker_features=features,
                    gen_targets=torch.zeros(1, cfg.gen_seq_len, cfg.gen_dim))
    print(f"cpu-small forward, one sample of {batch['input_ids'].shape[1]} positions: "
          f"{time.perf_counter() - started:.2f} s; trainable {trained:,}")
    assert torch.isfinite(out.loss)
    assert out.ret_embeddings.shape == (1, cfg.ret_dim)

    [reply] = model.generate([chat], [[sticker]], force_sticker=True, max_new_tokens=8)
    assert reply.ret_embedding.shape == (cfg.ret_dim,)
    assert reply.gen_embeds.shape == (cfg.gen_seq_len, cfg.gen_dim)

    folder = save_checkpoint(model, tmp_path, "v1")
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 4 * trained + 100_000 < 0.2 * 4 * sum(sizes.values())
    again = load_checkpoint(tmp_path, llm=None)
    with torch.no_grad():
        assert torch.equal(again(**batch, images=[sticker]).logits,
                           model(**batch, images=[sticker]).logits)
