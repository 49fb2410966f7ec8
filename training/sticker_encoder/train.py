"""Train the cpu-small sticker encoder contrastively against MiniLM text embeddings.

    python -m training.sticker_encoder.train [--stickers-dir data/stickers]
        [--epochs N] [--seed 0] [--plot FILE] [--no-extra-emoji]

Data:
- library stickers: image <-> MiniLM("<name>. <content description> <emotion
  description>"), the parts of the STICKERCONV metadata that describe what the picture
  shows and feels (the usage recommendation and emotion label are left out: they say
  how to use it, not what it looks like). The emoji character itself is left out too:
  MiniLM's tokenizer maps most emoji to [UNK].
- a fixed 20% of the library (seeded with SPLIT_SEED, stratified by emotion) is held
  out: neither its images nor its texts are ever used for training.
- extra pairs: every single-code-point Noto Color Emoji glyph that appears in no
  library sticker, rendered like the pack, described by its lower-cased Unicode name
  (`unicodedata.name`, e.g. "grinning cat face with smiling eyes."). ~1,150 pairs next
  to ~160 library ones: they teach shapes, colours and faces in general; library pairs
  are repeated (LIBRARY_REPEATS per epoch) so the long descriptions are not drowned.
Loss: symmetric InfoNCE (CLIP) within a batch, learnable temperature; two copies of the
same sticker in one batch count as positives of each other, never as negatives.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import random
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from engine.embeddings import TextEncoder
from engine.pegs.sticker_encoder import (
    BASE_SIZE,
    DEFAULT_WEIGHTS,
    StickerEncoder,
    augment,
    to_base,
)
from engine.stickers import Sticker, StickerLibrary
from engine.stickers.render import NOTO_EMOJI_FONT, EmojiRenderError, render_emoji
from training.sticker_encoder.evaluate import (
    chance_scores,
    report_table,
    retrieval_scores,
    save_plot,
)

SPLIT_SEED = 0  # fixed, so runs with different --seed share one held-out set
HELDOUT_FRACTION = 0.2
LIBRARY_REPEATS = 3
EPOCHS = 15
BATCH_SIZE = 128
LR = 2e-3
# Mirroring would falsify these (directions, text, clock hands, letters on signs).
_NO_FLIP = re.compile(
    r"\b(left\w*|right\w*|\w*wards|pointing|arrow\w*|letters?|latin|squared|ideograph|cjk|"
    r"katakana|hiragana|keycap|digit|numbers?|input|sign|mark|clock\w*|"
    r"hundred|sos|ok|cool|new|free|up|ng|vs|id|atm|wc|abcd?|text|words?)\b")


def sticker_text(sticker: Sticker) -> str:
    """The description a sticker image is trained (and evaluated) against."""
    return f"{sticker.name}. {sticker.content_description} {sticker.emotion_description}"


def flip_ok(text: str) -> bool:
    return _NO_FLIP.search(text.lower()) is None


def heldout_split(stickers: Sequence[Sticker], fraction: float = HELDOUT_FRACTION,
                  seed: int = SPLIT_SEED) -> tuple[list[Sticker], list[Sticker]]:
    """(train, held-out): per emotion, a seeded `fraction` of the ids sorted by id."""
    rng = random.Random(seed)
    train, held = [], []
    for emotion in sorted({s.emotion.value for s in stickers}):
        group = sorted((s for s in stickers if s.emotion.value == emotion), key=lambda s: s.id)
        rng.shuffle(group)
        n = round(fraction * len(group))
        held += group[:n]
        train += group[n:]
    return sorted(train, key=lambda s: s.id), sorted(held, key=lambda s: s.id)


def extra_emoji(library_emoji: Sequence[str],
                font_path: Path = NOTO_EMOJI_FONT) -> list[tuple[str, str]]:
    """(emoji, description) for single-code-point glyphs of the font that share no
    code point with any library sticker (so no held-out sticker leaks in)."""
    from fontTools.ttLib import TTFont  # ships with matplotlib

    used = {ord(ch) for e in library_emoji for ch in e}
    skip = set(range(0x1F3FB, 0x1F400)) | set(range(0x1F1E6, 0x1F200))  # tones, flags
    cmap = TTFont(str(font_path), lazy=True).getBestCmap()
    out = []
    for cp in sorted(cmap):
        name = unicodedata.name(chr(cp), "")
        # Below U+2000 the font holds digits, '#', '*' and a few marks: not stickers.
        if cp < 0x2000 or cp >= 0xE0000 or cp in skip or cp in used or not name:
            continue
        if unicodedata.category(chr(cp)) in ("Mn", "Me", "Cf"):  # joiners, selectors
            continue
        out.append((chr(cp), name.lower() + "."))
    return out


# --- training -----------------------------------------------------------------------
@dataclass
class PairSet:
    """Training pairs: base images, their target text embeddings, per-epoch repeats."""
    images: torch.Tensor  # uint8 [N, 4, R, R]
    targets: torch.Tensor  # float32 [N, D], unit rows
    allow_flip: torch.Tensor  # bool [N]
    repeats: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.images)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, ids: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; rows with the same pair id are each other's positives."""
    logits = logit_scale.exp() * image_emb @ text_emb.T
    same = (ids[:, None] == ids[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def train_encoder(model: StickerEncoder, pairs: PairSet, *, epochs: int = EPOCHS,
                  batch_size: int = BATCH_SIZE, lr: float = LR, seed: int = 0,
                  augmented: bool = True, progress: bool = True,
                  on_epoch: Callable[[int, float], dict[str, float]] | None = None,
                  ) -> list[float]:
    """AdamW + one-cycle schedule; returns the mean loss of each epoch."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.repeat_interleave(torch.arange(len(pairs)), pairs.repeats)
    steps_per_epoch = max(1, len(order) // batch_size)  # drop the ragged last batch
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, pct_start=0.1,
                                                total_steps=epochs * steps_per_epoch)
    history: list[float] = []
    bar = tqdm(range(epochs), desc="training sticker encoder", unit="epoch",
               disable=not progress)
    for epoch in bar:
        model.train()
        perm = order[torch.randperm(len(order), generator=gen)]
        losses = []
        for step in range(steps_per_epoch):
            ids = perm[step * batch_size:(step + 1) * batch_size]
            base = pairs.images[ids]
            pixels = (augment(base, pairs.allow_flip[ids], model.image_size, gen) if augmented
                      else F.interpolate(_on_white(base), size=model.image_size,
                                         mode="bilinear", antialias=True))
            loss = clip_loss(model.embed(pixels), pairs.targets[ids], ids, model.logit_scale)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # CLIP's cap on the temperature: logits at most 100
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        postfix = {"loss": f"{history[-1]:.3f}"}
        if on_epoch is not None:
            postfix.update({k: f"{v:.2f}" for k, v in on_epoch(epoch, history[-1]).items()})
        bar.set_postfix(postfix)
    model.eval()
    return history


def _on_white(base: torch.Tensor) -> torch.Tensor:
    x = base.float() / 255.0
    return x[:, :3] + (1 - x[:, 3:])


# --- evaluation ---------------------------------------------------------------------
@dataclass
class HeldoutSet:
    """Held-out sticker images plus every library description, embedded once."""
    ids: list[str]
    images: list[Image.Image]
    labels: list[str]  # held-out emotions
    texts: np.ndarray  # MiniLM embeddings of all library descriptions, sorted by id
    library_labels: list[str]
    in_library: np.ndarray  # row of each held-out sticker in `texts`

    @classmethod
    def from_library(cls, library: StickerLibrary, text_encoder: TextEncoder,
                     heldout_ids: Sequence[str] | None = None) -> HeldoutSet:
        stickers = sorted(library, key=lambda s: s.id)
        if heldout_ids is None:
            heldout_ids = [s.id for s in heldout_split(stickers)[1]]
        position = {s.id: i for i, s in enumerate(stickers)}
        images = []
        for sid in heldout_ids:
            with Image.open(library.png_file(sid)) as im:
                images.append(im.copy())
        return cls(ids=list(heldout_ids), images=images,
                   labels=[library.get(i).emotion.value for i in heldout_ids],
                   texts=text_encoder.encode([sticker_text(s) for s in stickers]),
                   library_labels=[s.emotion.value for s in stickers],
                   in_library=np.array([position[i] for i in heldout_ids]))

    def metrics(self, model: StickerEncoder) -> dict[str, dict]:
        """Held-out images against (a) the held-out descriptions, (b) all library ones."""
        queries = model.encode_images(self.images)
        return {
            "heldout": retrieval_scores(queries, self.texts[self.in_library],
                                        np.arange(len(self.ids)), self.labels, self.labels),
            "library": retrieval_scores(queries, self.texts, self.in_library, self.labels,
                                        self.library_labels),
            "chance_heldout": chance_scores(self.labels, self.labels),
            "chance_library": chance_scores(self.labels, self.library_labels),
        }


# --- the command --------------------------------------------------------------------
def build_pairs(train: Sequence[Sticker], library: StickerLibrary, text_encoder: TextEncoder,
                extras: Sequence[tuple[str, str]], progress: bool = True) -> PairSet:
    images, texts, repeats = [], [], []
    for s in train:
        with Image.open(library.png_file(s.id)) as im:
            images.append(im.copy())
        texts.append(sticker_text(s))
        repeats.append(LIBRARY_REPEATS)
    for emoji, text in tqdm(extras, desc="rendering extra emoji", disable=not progress):
        try:
            images.append(render_emoji(emoji, size=BASE_SIZE))
        except EmojiRenderError:
            continue
        texts.append(text)
        repeats.append(1)
    targets = torch.from_numpy(text_encoder.encode(texts))
    return PairSet(to_base(images), targets, torch.tensor([flip_ok(t) for t in texts]),
                   torch.tensor(repeats))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stickers-dir", type=Path, default=Path("data/stickers"))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--no-extra-emoji", dest="extra_emoji", action="store_false",
                        help="train on the library's training stickers only")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    library = StickerLibrary.load(args.stickers_dir)
    stickers = sorted(library, key=lambda s: s.id)
    train, held = heldout_split(stickers)
    heldout_ids = [s.id for s in held]
    extras = extra_emoji([s.emoji or "" for s in stickers]) if args.extra_emoji else []
    text_encoder = TextEncoder()
    pairs = build_pairs(train, library, text_encoder, extras)
    print(f"library {len(stickers)} stickers: {len(train)} train, {len(held)} held out; "
          f"{len(pairs) - len(train)} extra emoji pairs")

    evaluation = HeldoutSet.from_library(library, text_encoder, heldout_ids)
    model = StickerEncoder()
    untrained = copy.deepcopy(model).eval()
    curve: list[dict[str, float]] = []

    def watch(epoch: int, loss: float) -> dict[str, float]:
        # Held-out numbers are only recorded for the curve; nothing is selected on them.
        h = evaluation.metrics(model)["heldout"]
        curve.append({"top1": h["top1"], "top10": h["top10"]})
        return {"top10": h["top10"]}

    train_started = time.perf_counter()
    history = train_encoder(model, pairs, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed, on_epoch=watch)
    train_seconds = time.perf_counter() - train_started

    trained, random_init = evaluation.metrics(model), evaluation.metrics(untrained)
    rows = {"trained": trained, "random init": random_init,
            "chance": {"heldout": trained["chance_heldout"],
                       "library": trained["chance_library"]}}
    print(report_table(rows))

    def brief(m: dict) -> dict:
        return {part: {k: v for k, v in m[part].items() if k != "recall_curve"}
                for part in ("heldout", "library")}

    report = {"training": {
        "command": "python -m training.sticker_encoder.train",
        "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "threads": threads, "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "data": {
            "library_stickers": len(stickers), "library_digest": library.digest(),
            "train_stickers": len(train), "heldout_stickers": len(held),
            "heldout_split": f"{HELDOUT_FRACTION:.0%} per emotion, random.Random({SPLIT_SEED})",
            "extra_emoji_pairs": len(pairs) - len(train), "library_repeats": LIBRARY_REPEATS,
            "text": "<name>. <content_description> <emotion_description> -> MiniLM",
            "extra_text": "lower-cased unicodedata.name of single-code-point Noto emoji "
                          "sharing no code point with the library",
        },
        "heldout_ids": heldout_ids,
        "loss_history": [round(x, 4) for x in history],
        "metrics": {"trained": brief(trained), "random_init": brief(random_init),
                    "chance": brief(rows["chance"])},
    }}
    model.save(args.out, extra=report)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in "
          f"{train_seconds:.0f} s of training")
    if args.plot:
        save_plot(args.plot, history, curve, rows)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
