"""PEGS-Gen and PEGS-RAG on Stable Diffusion (diffusers).

PEGS-Gen: the feature mapper turns the LLM's [IMG] hidden states into SD text-encoder
space; those mapped embeddings go straight in as `prompt_embeds` (no text prompt).
PEGS-RAG: the same embeddings steer img2img that starts from the retrieved sticker.

Every component is passed in: `from_local_path` reads a local diffusers folder with
`local_files_only=True`, and `tiny_pipeline` builds a random toy pipeline in code for
tests and the `tiny` profile. Nothing here ever reaches a model hub.
"""

from __future__ import annotations

import math
from pathlib import Path

import diffusers
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from packaging.version import Version
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from engine.media import STICKER_SIZE, on_white
from engine.pegs.heads import caption_target  # noqa: F401  (the L_gen target text)

DEFAULT_SETTING = "STICKERBOT_SD_PATH"
# diffusers 0.42 renamed from_pretrained's torch_dtype to dtype (the old name warns).
_DTYPE_KWARG = "dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype"


class StickerGenerator:
    """Stable Diffusion text2img (Gen) and img2img (RAG) over one set of weights."""

    def __init__(self, pipe: StableDiffusionPipeline, *, output_size: int = STICKER_SIZE) -> None:
        self.pipe = pipe
        # The same modules, so RAG costs no second copy of the weights. Not from_pipe:
        # it casts the shared modules to its own dtype argument (float32 by default).
        # The scheduler keeps per-run state, so img2img gets its own.
        parts = dict(pipe.components)
        parts["scheduler"] = type(pipe.scheduler).from_config(pipe.scheduler.config)
        self.img2img = StableDiffusionImg2ImgPipeline(
            **parts, requires_safety_checker=bool(pipe.config.requires_safety_checker))
        for p in (self.pipe, self.img2img):
            p.set_progress_bar_config(disable=True)
        self.output_size = output_size
        self._empty: torch.Tensor | None = None

    # --- shape of the conditioning ------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    @property
    def embed_dim(self) -> int:
        """D of prompt_embeds [B, seq_len, D]: the UNet's cross-attention width."""
        return int(self.pipe.unet.config.cross_attention_dim)

    @property
    def seq_len(self) -> int:
        return int(self.pipe.tokenizer.model_max_length)

    @property
    def size(self) -> int:
        """The side in pixels that the UNet works at (before upsampling to output_size)."""
        return int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    # --- text side -----------------------------------------------------------
    @torch.no_grad()
    def text_embedding(self, texts: list[str]) -> torch.Tensor:
        """The frozen SD text encoder's embedding [B, seq_len, D] of `texts`.

        no_grad rather than inference_mode: the result is an MSE target in training,
        and inference tensors cannot be saved for backward.
        """
        if not texts:
            raise ValueError("text_embedding needs at least one text")
        embeds, _ = self.pipe.encode_prompt(list(texts), self.device, 1, False)
        return embeds

    def empty_embedding(self, batch: int = 1) -> torch.Tensor:
        """Embedding of the empty prompt, the unconditional side of guidance (cached)."""
        if self._empty is None:
            self._empty = self.text_embedding([""])
        return self._empty.expand(batch, -1, -1)

    def _conditioning(self, prompt_embeds: torch.Tensor,
                      negative: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        want = (self.seq_len, self.embed_dim)
        if prompt_embeds.ndim != 3 or tuple(prompt_embeds.shape[1:]) != want:
            raise ValueError(f"prompt_embeds must be [B, {want[0]}, {want[1]}], "
                             f"got {list(prompt_embeds.shape)}")
        batch = prompt_embeds.shape[0]
        if negative is None:
            negative = self.empty_embedding(batch)
        if negative.shape != prompt_embeds.shape:
            raise ValueError(f"negative_prompt_embeds {list(negative.shape)} must match "
                             f"prompt_embeds {list(prompt_embeds.shape)}")
        cast = {"device": self.device, "dtype": self.dtype}
        return prompt_embeds.detach().to(**cast), negative.detach().to(**cast)

    def _generator(self, seed: int) -> torch.Generator:
        # A CPU generator gives the same noise on every device; diffusers moves it over.
        return torch.Generator(device="cpu").manual_seed(int(seed))

    def _finish(self, images: list[Image.Image]) -> list[Image.Image]:
        side = self.output_size
        return [im if im.size == (side, side)
                else im.resize((side, side), Image.Resampling.LANCZOS) for im in images]

    # --- PEGS-Gen / PEGS-RAG -------------------------------------------------
    def generate(self, prompt_embeds: torch.Tensor, *, steps: int = 25,
                 guidance_scale: float = 7.5, seed: int = 0,
                 negative_prompt_embeds: torch.Tensor | None = None) -> list[Image.Image]:
        """PEGS-Gen: one sticker per row of the mapped embeddings."""
        cond, uncond = self._conditioning(prompt_embeds, negative_prompt_embeds)
        out = self.pipe(prompt_embeds=cond, negative_prompt_embeds=uncond,
                        height=self.size, width=self.size, num_inference_steps=max(1, steps),
                        guidance_scale=guidance_scale, generator=self._generator(seed))
        return self._finish(out.images)

    def refine(self, init_image: Image.Image, prompt_embeds: torch.Tensor, *,
               strength: float = 0.6, steps: int = 25, guidance_scale: float = 7.5,
               seed: int = 0,
               negative_prompt_embeds: torch.Tensor | None = None) -> list[Image.Image]:
        """PEGS-RAG: img2img from the retrieved sticker, steered by the embeddings.

        `strength` in (0, 1] is how far to depart from the sticker (1 = ignore it).
        """
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        cond, uncond = self._conditioning(prompt_embeds, negative_prompt_embeds)
        # Transparency would turn black; the UNet works at one square size.
        start = on_white(init_image).resize((self.size, self.size), Image.Resampling.LANCZOS)
        # img2img runs int(steps * strength) steps: make that at least one.
        steps = max(steps, math.ceil(1.0 / strength))
        out = self.img2img(image=[start] * cond.shape[0], prompt_embeds=cond,
                           negative_prompt_embeds=uncond, strength=strength,
                           num_inference_steps=steps, guidance_scale=guidance_scale,
                           generator=self._generator(seed))
        return self._finish(out.images)

    # --- construction --------------------------------------------------------
    @classmethod
    def from_local_path(cls, path: str | Path | None, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, *, setting: str = DEFAULT_SETTING,
                        output_size: int = STICKER_SIZE) -> StickerGenerator:
        """Load a local SD checkpoint folder (diffusers layout); never downloads."""
        root = Path(path) if path else None
        if root is None or not (root / "model_index.json").is_file():
            raise FileNotFoundError(
                f"{setting}={str(path or '')!r} is not a local Stable Diffusion folder "
                "(diffusers layout with model_index.json). Set it to a checkpoint on disk; "
                "nothing is downloaded.")
        # The safety checker is wired in by engine safety, not loaded here.
        pipe = StableDiffusionPipeline.from_pretrained(
            root, local_files_only=True, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, **{_DTYPE_KWARG: dtype})
        return cls(pipe.to(device), output_size=output_size)


# --- the tiny random pipeline ------------------------------------------------

def _byte_chars() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: one printable character for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tiny_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer with no merges: every byte is a token (any text works)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in _byte_chars():
            vocab[ch + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _passthrough_vae(latent_channels: int = 4, width: int = 8) -> AutoencoderKL:
    """A tiny AutoencoderKL wired by hand to pass pictures through (2x2 average, then
    nearest upsampling). A random VAE would decode noise whatever it was given, so
    RAG could never look like its sticker in the `tiny` profile or in tests.

    Channels: 0-2 carry RGB, 3 carries -(R+G+B) and 4 a large constant K, so every
    GroupNorm (one group) sees a fixed mean K/width and a nearly fixed spread; its
    affine weights undo the normalisation and lift values where SiLU is ~linear.
    """
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        block_out_channels=(width, width), layers_per_block=1, norm_num_groups=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, scaling_factor=1.0)
    const, lift = 80.0, 12.0
    spread = const * math.sqrt(width - 1) / width  # GroupNorm std from the constant alone

    def center(conv: torch.nn.Conv2d, mapping: dict[int, dict[int, float]],
               bias: dict[int, float]) -> None:
        conv.weight.zero_()
        conv.bias.zero_()
        mid = conv.kernel_size[0] // 2
        for out_ch, ins in mapping.items():
            for in_ch, w in ins.items():
                conv.weight[out_ch, in_ch, mid, mid] = w
        for out_ch, b in bias.items():
            conv.bias[out_ch] = b

    def norm(gn: torch.nn.GroupNorm) -> None:
        gn.weight.zero_()
        gn.bias.zero_()
        gn.weight[:3] = spread
        gn.bias[:3] = const / width + lift

    rgb_in = {i: {i: 1.0} for i in range(3)} | {3: {i: -1.0 for i in range(3)}}
    with torch.no_grad():
        for name, module in vae.named_modules():
            if name.endswith("conv2") and isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()  # resnet residual branch off: identity block
                module.bias.zero_()
            elif name.endswith("to_out.0"):
                module.weight.zero_()  # attention residual branch off
                module.bias.zero_()
            elif name.endswith("downsamplers.0.conv"):
                module.weight.zero_()
                module.bias.zero_()
                for c in range(width):  # taps over rows/cols 2i, 2i+1: 2x2 average
                    module.weight[c, c, :2, :2] = 0.25
            elif name.endswith("upsamplers.0.conv"):
                center(module, {c: {c: 1.0} for c in range(width)}, {})
        center(vae.encoder.conv_in, rgb_in, {4: const})
        center(vae.decoder.conv_in, rgb_in, {4: const})
        norm(vae.encoder.conv_norm_out)
        norm(vae.decoder.conv_norm_out)
        # Latent mean = RGB (4th channel 0); log-variance -30: sampling is the mean.
        center(vae.encoder.conv_out, {i: {i: 1.0} for i in range(3)},
               {i: -lift for i in range(3)} | {latent_channels + i: -30.0
                                                for i in range(latent_channels)})
        center(vae.quant_conv, {i: {i: 1.0} for i in range(2 * latent_channels)}, {})
        center(vae.post_quant_conv, {i: {i: 1.0} for i in range(latent_channels)}, {})
        center(vae.decoder.conv_out, {i: {i: 1.0} for i in range(3)},
               {i: -lift for i in range(3)})
    return vae


def tiny_pipeline(seed: int = 0, sample_size: int = 32) -> StableDiffusionPipeline:
    """A random toy SD pipeline built in code (no downloads): 64 px, D=32, CPU-fast."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG alone
        torch.manual_seed(seed)
        tokenizer = tiny_tokenizer()
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=77,
            bos_token_id=0, eos_token_id=1, pad_token_id=1))
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
            block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=(2, 4),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
        vae = _passthrough_vae()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    for module in (text_encoder, unet, vae):
        module.eval()
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
