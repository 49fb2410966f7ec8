"""PEGS hyperparameters: one dataclass, a preset per runtime profile, and a JSON round trip.

Naming follows the STICKERCONV paper (arXiv 2402.01679): the vocabulary gains r tokens
[IMG1]..[IMGr]; the hidden states of the first k feed the retrieval head W_t, the other
r - k feed the feature mapper that writes Stable Diffusion `prompt_embeds`.

Why k = 1 by default: retrieval needs one vector, and GILL (whose output side PEGS
follows) reads it from the first [IMG] token, the one the model decides to emit; the
tokens after it are forced and free to serve generation only. Keeping the two sets
disjoint stops the contrastive and the regression losses pulling the same hidden state
two ways. r = 8 as in GILL for the small profiles; the `paper` preset uses the authors'
released configuration (see `PegsConfig.paper`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

VISION_CHOICES = ("tiny", "sticker-encoder")  # or a local path (see engine/pegs/vision.py)


@dataclass
class PegsConfig:
    # --- backbones (frozen) --------------------------------------------------------------
    llm_path: str = ""  # "" = SmolLM2-135M-Instruct via engine.llm; "tiny" = built in code
    llm_cache_dir: str = "data/models"  # where engine.llm caches the de-quantised GGUF
    vision: str = "sticker-encoder"  # "tiny" | "sticker-encoder" | local CLIP/SigLIP/BLIP-2 dir
    sd_path: str = ""  # Stable Diffusion folder for PEGS-Gen (used by engine/pegs/diffusion.py)
    # --- input side: vision encoder -> Q-Former -> projection --------------------------
    num_query_tokens: int = 32
    qformer_layers: int = 2
    qformer_hidden: int = 256
    qformer_heads: int = 4
    qformer_dropout: float = 0.0
    freeze_qformer: bool = False  # True keeps a pretrained (BLIP-2) Q-Former as loaded
    image_size: int = 96  # for "tiny"/"sticker-encoder"; HF checkpoints bring their own
    image_token: str = "<image>"  # one per image in prompts; expanded to num_query_tokens
    max_images: int = 4  # per context; older images are dropped from longer conversations
    # --- output side ---------------------------------------------------------------------
    num_img_tokens: int = 8  # r
    num_ret_tokens: int = 1  # k (the first k [IMG] tokens feed W_t)
    ret_dim: int = 256  # shared retrieval space of W_t and W_i
    sticker_feature_dim: int = 384  # width of the sticker features fed to W_i
    gen_dim: int = 768  # SD text-encoder width (768 for SD 1.5, 1024 for SD 2.x)
    gen_seq_len: int = 77  # SD text-encoder sequence length
    mapper_dim: int = 256
    mapper_layers: int = 4  # encoder and decoder layers each
    mapper_heads: int = 4
    # --- LoRA on the LLM -----------------------------------------------------------------
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    # --- loss weights: L = lambda_lm * L_lm + lambda_gen * L_gen + lambda_ret * L_ret ---
    lambda_lm: float = 1.0
    lambda_gen: float = 1.0
    lambda_ret: float = 1.0
    profile: str = "custom"

    def __post_init__(self) -> None:
        if not 1 <= self.num_ret_tokens < self.num_img_tokens:
            raise ValueError(
                f"need 1 <= num_ret_tokens ({self.num_ret_tokens}) < num_img_tokens "
                f"({self.num_img_tokens}): the tokens after the first k feed the mapper")
        for name in ("num_query_tokens", "ret_dim", "sticker_feature_dim", "gen_dim",
                     "gen_seq_len", "mapper_dim", "mapper_layers", "lora_r", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"PegsConfig.{name} must be >= 1, not {getattr(self, name)}")
        self.lora_target_modules = list(self.lora_target_modules)

    # --- token strings ---------------------------------------------------------------------
    @property
    def img_tokens(self) -> list[str]:
        return [f"[IMG{i}]" for i in range(1, self.num_img_tokens + 1)]

    # --- presets ---------------------------------------------------------------------------
    @classmethod
    def tiny(cls, **overrides: Any) -> PegsConfig:
        """Random everything, built in code: tests and benches, seconds on a CPU."""
        base = cls(
            llm_path="tiny", vision="tiny", num_query_tokens=32, qformer_layers=1,
            qformer_hidden=32, qformer_heads=2, image_size=32, num_img_tokens=4,
            num_ret_tokens=1, ret_dim=16, sticker_feature_dim=32, gen_dim=32, gen_seq_len=77,
            mapper_dim=32, mapper_layers=1, mapper_heads=2, lora_r=4, lora_alpha=8,
            lora_dropout=0.0, profile="tiny",
        )
        return replace(base, **overrides)

    @classmethod
    def cpu_small(cls, **overrides: Any) -> PegsConfig:
        """SmolLM2-135M-Instruct + the small sticker encoder trained here (the default)."""
        base = cls(
            llm_path="", vision="sticker-encoder", num_query_tokens=32, qformer_layers=2,
            qformer_hidden=256, qformer_heads=4, image_size=96, num_img_tokens=8,
            num_ret_tokens=1, ret_dim=256,
            sticker_feature_dim=384,  # StickerEncoder.embed: MiniLM-space sticker vectors
            gen_dim=768, gen_seq_len=77, mapper_dim=256, mapper_layers=4, mapper_heads=4,
            lora_r=8, lora_alpha=16, lora_dropout=0.05, profile="cpu-small",
        )
        return replace(base, **overrides)

    @classmethod
    def paper(cls, llm_path: str, vision_path: str, sd_path: str = "",
              **overrides: Any) -> PegsConfig:
        """Vicuna-7B + BLIP-2 (ViT-g/14 + Q-Former) + SD 1.5, all local paths.

        LoRA r=8, alpha=16, dropout 0.05 and loss weights 1/1/1 as in the paper's Table 8
        (and Eq. 10); output 77 x 768 (SD 1.5), the length of Tables 6-7's output side.
        From the authors' released configuration: 32 [IMG] tokens, LoRA on q_proj/v_proj,
        BLIP-2's Q-Former frozen (only the projection is trained, as Table 6 says), mapper
        width 512 with 4 encoder + 4 decoder layers and 4 heads. ret_dim 256 as GILL;
        sticker features are BLIP-2 ViT-g pooled outputs (1408). Other backbones: pass
        `backbone_dims(vision_path, sd_path)` as overrides.
        """
        base = cls(
            llm_path=llm_path, vision=vision_path, sd_path=sd_path, num_query_tokens=32,
            qformer_hidden=768, qformer_layers=12, qformer_heads=12, freeze_qformer=True,
            image_size=224, num_img_tokens=32, num_ret_tokens=1, ret_dim=256,
            sticker_feature_dim=1408, gen_dim=768, gen_seq_len=77, mapper_dim=512,
            mapper_layers=4, mapper_heads=4, lora_r=8, lora_alpha=16, lora_dropout=0.05,
            lora_target_modules=["q_proj", "v_proj"], profile="paper",
        )
        return replace(base, **overrides)

    @classmethod
    def custom(cls, base: str = "cpu-small", **overrides: Any) -> PegsConfig:
        """Any preset ("tiny" | "cpu-small") with fields replaced, e.g. a local LLM path."""
        presets = {"tiny": cls.tiny, "cpu-small": cls.cpu_small}
        if base not in presets:
            raise ValueError(f"unknown base preset {base!r}; choose one of {sorted(presets)}")
        return replace(presets[base](), profile="custom", **overrides)

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PegsConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PegsConfig fields {unknown} (written by a newer version?)")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> PegsConfig:
        return cls.from_dict(json.loads(text))


def backbone_dims(vision_path: str = "", sd_path: str = "") -> dict[str, int]:
    """The PegsConfig widths fixed by local backbones: the vision encoder's pooled width
    (`sticker_feature_dim`) and the SD text encoder's width and length (`gen_dim`,
    `gen_seq_len`). Empty for names that are not folders ("tiny", "sticker-encoder")."""
    dims: dict[str, int] = {}
    vision = Path(vision_path).expanduser() / "config.json" if vision_path else None
    if vision is not None and vision.is_file():
        config = json.loads(vision.read_text(encoding="utf-8"))
        dims["sticker_feature_dim"] = config.get("vision_config", config)["hidden_size"]
    text = Path(sd_path).expanduser() / "text_encoder" / "config.json" if sd_path else None
    if text is not None and text.is_file():
        config = json.loads(text.read_text(encoding="utf-8"))
        dims["gen_dim"] = config["hidden_size"]
        dims["gen_seq_len"] = config["max_position_embeddings"]
    return dims
