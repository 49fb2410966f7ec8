"""Crisis recognition: is this person at risk of hurting themselves or someone else?

MiniLM (the encoder the emotion model uses) fine-tuned with LoRA to read a turn
together with what came just before it, as a sentence pair: (the previous user and bot
turns, this turn). "I'm done." after talk of dying and after lending a car are
different inputs. Four classes:

    none         ordinary conversation, idioms and dark jokes included
    passive      a wish to be dead, a past attempt: the bot asks, gently and directly
    self_harm    active thoughts, method, intent, plan, preparation, self-injury
    harm_others  a threat to hurt someone, with or without a plan

Trained by `python -m training.safety.train` on the labelled turns of
training/safety/data (the adapter and head are a few hundred kilobytes in
engine/safety/crisis_model); two thresholds were chosen there on a validation split at
a realistic base rate: `crisis` on P(self_harm) + P(harm_others), `check_in` on
1 - P(none). Beside the model:
- engine.safety.known_lines adds how much nearer the turn is to labelled risk lines
  than to ordinary ones (by the plain MiniLM embedding, which generalises across
  wording better than the fine-tuned model), weighted by `known_weight` in the crisis
  score and by `known_weight_check_in` in the concern; the weights and both thresholds
  are then chosen by `python -m training.safety.calibrate` on lines by
  a writer the training never saw;
- engine.safety.phrases raises a turn that names the risk plainly ("I just swallowed
  all my pills") to a crisis whatever the scores say;
- engine.safety.danger finds danger to the person from someone else (its patterns, and
  its bank of danger lines compared on the same embedding as the known lines): the
  assessment's `danger`, which the policy answers with the danger reply.

The turn reaches the model in the form the LLM sees it: the message plus "[sent a
sticker of ...]" for each picture. Long messages are read in overlapping word
windows, and the most alarming window decides.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.safety.check_in import read_answer
from engine.safety.danger import DANGER_LINES_FILE, DangerLines, in_danger
from engine.safety.known_lines import MIN_WORDS, NO_MARGINS, KnownLines, Margins
from engine.safety.phrases import explicit_risk

if TYPE_CHECKING:
    from engine.embeddings import TextEncoder

LABELS = ("none", "passive", "self_harm", "harm_others")
# What engine.safety.phrases names that gets at least the check-in.
ASKED_PHRASES = ("passive", "method")
CRISIS_LABELS = frozenset({"self_harm", "harm_others"})
# The finer grades the data is written in (after the Columbia Suicide Severity Rating
# Scale), and the class each one is trained as.
LEVEL_CLASS: dict[str, str] = {
    "none": "none", "none_context": "none",
    "wish_dead": "passive", "past_attempt": "passive",
    "active_thoughts": "self_harm", "method": "self_harm", "intent": "self_harm",
    "plan": "self_harm", "preparation": "self_harm", "nssi": "self_harm",
    "self_harm": "self_harm",
    "others_no_plan": "harm_others", "others_plan": "harm_others",
    "harm_others": "harm_others",
}
DEFAULT_MODEL_DIR = Path(__file__).with_name("crisis_model")
KNOWN_LINES_FILE = "known_lines.npz"

WINDOW_WORDS = 48
WINDOW_STRIDE = 24
MAX_WINDOWS = 64  # 4000 characters are ~30 windows; anything longer is cut
CONTEXT_WORDS = 64  # the end of the previous turns is what a reply answers
MAX_TOKENS = 128

# MiniLM maps emoji to [UNK], and Unicode names some of them oddly (🔪 is "HOCHO"): the
# emoji that carry crisis meaning get plain words beside them.
EMOJI_WORDS: dict[str, str] = {
    "🔪": "knife", "🔫": "gun", "💊": "pills", "⚰": "coffin", "🪦": "grave",
    "🩸": "blood", "💀": "skull", "☠": "skull and crossbones", "🪢": "rope",
    "💣": "bomb", "🗡": "dagger", "🪓": "axe", "🧨": "explosive", "💉": "syringe",
    "⛓": "chains", "🔥": "fire", "💔": "broken heart", "😭": "crying", "😢": "crying",
    "😞": "disappointed", "😔": "sad", "🥀": "wilted flower",
}


@dataclass(frozen=True)
class Thresholds:
    crisis: float  # on P(self_harm) + P(harm_others) (+ weighted crisis margin)
    check_in: float  # on 1 - P(none) (+ weighted risk margin): the check-in question
    known_weight: float = 0.0  # how much the crisis margin counts in the crisis score
    known_weight_check_in: float = 0.0  # how much the risk margin counts in the concern


@dataclass(frozen=True)
class CrisisAssessment:
    """The verdict on one turn."""

    label: str | None  # "self_harm" | "harm_others" when the crisis reply is due
    check_in: bool  # not a clear crisis, but worth asking about
    probabilities: dict[str, float]
    score: float  # P(self_harm) + P(harm_others), plus the weighted crisis margin
    phrase: str | None = None  # what engine.safety.phrases found named plainly, if anything
    concern_lift: float = 0.0  # the weighted risk margin of the known lines
    # Danger to the person from someone else (engine.safety.danger): a kind the patterns
    # named ("abuse", "threat", "intruder"), "similar" to known danger lines, or None.
    danger: str | None = None

    @property
    def is_crisis(self) -> bool:
        return self.label is not None

    @property
    def concern(self) -> float:
        """1 - P(none), plus the weighted risk margin: what the check-in threshold is on."""
        return 1.0 - self.probabilities.get("none", 1.0) + self.concern_lift

    @property
    def target(self) -> str:
        """Whom the risk is about, for the check-in question."""
        return "others" if self.probabilities.get("harm_others", 0.0) > max(
            self.probabilities.get("self_harm", 0.0),
            self.probabilities.get("passive", 0.0)) else "self"


NO_RISK = CrisisAssessment(None, False, {label: float(label == "none") for label in LABELS},
                           0.0)


def crisis_input(text: str, media_descriptions: list[str] | None = None) -> str:
    """The text the classifier reads: the message plus "[sent ...]" for each picture
    (perception's descriptions), with words beside crisis emoji."""
    parts = [text.strip()] if text and text.strip() else []
    parts += [f"[sent {d}]" for d in media_descriptions or []]
    return with_emoji_words(" ".join(parts))


def with_emoji_words(text: str) -> str:
    out: list[str] = []
    for ch in text:
        out.append(ch)
        word = EMOJI_WORDS.get(ch)
        if word:
            out.append(f" ({word})")
    return unicodedata.normalize("NFC", "".join(out))


def context_input(turns: list[tuple[str, str]]) -> str:
    """The previous turns as the model reads them: "person: ... bot: ...", cut to their
    last CONTEXT_WORDS words. `turns` are (role, text) pairs, oldest first."""
    lines = [f"{'bot' if role == 'bot' else 'person'}: {with_emoji_words(text.strip())}"
             for role, text in turns if text and text.strip()]
    words = " ".join(lines).split()
    return " ".join(words[-CONTEXT_WORDS:])


_WORDS = re.compile(r"\S+")
_PERSON_TURN = re.compile(r"(?:^|\s)person: (.*?)(?=\sbot: |\sperson: |$)")


def known_text(context: str, text: str) -> str:
    """What the known lines read of a turn: the turn itself, or for a turn under
    MIN_WORDS words the person's previous turn and this one together. A short turn means
    what came before it ("I'm done." after talk of dying, or after a dented car); a plain
    yes or no answers the bot's question, which the check-in reads, so it stays alone."""
    if len(text.split()) >= MIN_WORDS or read_answer(text) is not None:
        return text
    before = _PERSON_TURN.findall(context)
    return f"{before[-1].strip()} {text}".strip() if before else text


def windows(text: str, size: int = WINDOW_WORDS, stride: int = WINDOW_STRIDE) -> list[str]:
    """Overlapping word windows covering the text (one window when it is short)."""
    words = _WORDS.findall(text)
    if len(words) <= size:
        return [text.strip()] if text.strip() else []
    starts = list(range(0, max(1, len(words) - size) + 1, stride))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    return [" ".join(words[s:s + size]) for s in starts[:MAX_WINDOWS]]


class CrisisClassifier:
    """The fine-tuned pair classifier and its thresholds (see the module docstring)."""

    def __init__(self, model: CrisisModel, tokenizer, thresholds: Thresholds,
                 known: KnownLines | None = None, encoder: TextEncoder | None = None) -> None:
        if known is not None and encoder is None:
            raise ValueError("known lines need the sentence encoder that embedded them")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.thresholds = thresholds
        self.known = known
        self.encoder = encoder
        self.danger: DangerLines | None = None  # engine.safety.danger's bank, if trained

    @classmethod
    def load(cls, base_path: str | Path | None = None, model_dir: str | Path | None = None,
             encoder: TextEncoder | None = None) -> CrisisClassifier:
        """The committed model over the MiniLM at `base_path` (the default package's
        when None), with its known lines embedded by `encoder` (a TextEncoder of the
        same MiniLM; built here when None)."""
        from engine.embeddings import TextEncoder, default_minilm_path

        model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        if not (model_dir / "config.json").exists():
            raise FileNotFoundError(f"crisis model not found in {model_dir}; train it: "
                                    "python -m training.safety.train")
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        model, tokenizer = build_model(base_path or default_minilm_path(),
                                       lora_rank=int(config["lora_rank"]),
                                       tuned_layers=int(config["tuned_layers"]))
        model.load_trained(model_dir / "weights.safetensors")
        known = None
        if (model_dir / KNOWN_LINES_FILE).exists():
            known = KnownLines.load(model_dir / KNOWN_LINES_FILE)
            encoder = encoder or TextEncoder(base_path)
        classifier = cls(model, tokenizer, Thresholds(**config["thresholds"]), known, encoder)
        if encoder is not None and (model_dir / DANGER_LINES_FILE).exists():
            classifier.danger = DangerLines.load(model_dir / DANGER_LINES_FILE)
        return classifier

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Per (context, turn): the class probabilities (order LABELS) of its most
        alarming window."""
        spans: list[tuple[int, int]] = []
        batch: list[tuple[str, str]] = []
        for context, text in pairs:
            parts = windows(text) or [""]
            spans.append((len(batch), len(batch) + len(parts)))
            batch.extend((context, part) for part in parts)
        probs = self.model.predict(self.tokenizer, batch)
        out = np.zeros((len(pairs), len(LABELS)), dtype=np.float32)
        for i, (start, end) in enumerate(spans):
            rows = probs[start:end]
            out[i] = rows[int(np.argmin(rows[:, 0]))]  # the lowest P(none)
        return out

    def assess_pairs(self, pairs: list[tuple[str, str]]) -> list[CrisisAssessment]:
        """Verdicts for (context, turn) pairs, turns built with `crisis_input`."""
        live = [i for i, (_, text) in enumerate(pairs) if text.strip()]
        results = [NO_RISK] * len(pairs)
        if live:
            probs = self.probabilities([pairs[i] for i in live])
            texts = [known_text(*pairs[i]) for i in live]
            long, vectors = self._embedded(texts)
            margins = self.known_margins(texts, (long, vectors))
            dangers = self.dangers([pairs[i][1] for i in live], (long, vectors))
            for i, row, margin, danger in zip(live, probs, margins, dangers, strict=True):
                results[i] = replace(self.verdict(row, explicit_risk(pairs[i][1]), margin),
                                     danger=danger)
        return results

    def _embedded(self, texts: list[str]) -> tuple[list[int], np.ndarray | None]:
        """The texts of at least MIN_WORDS words (their indices) and their plain MiniLM
        embeddings; none without a bank to compare them with."""
        if self.encoder is None or (self.known is None and self.danger is None):
            return [], None
        long = [i for i, text in enumerate(texts) if len(text.split()) >= MIN_WORDS]
        return long, self.encoder.encode([texts[i] for i in long]) if long else None

    def known_margins(self, texts: list[str], embedded: tuple[list[int], np.ndarray | None]
                      | None = None) -> list[Margins]:
        """Each text's margins against the known lines (none when there is no bank, or
        for a turn shorter than MIN_WORDS words). `embedded`: `_embedded(texts)`, when
        already at hand."""
        margins = [NO_MARGINS] * len(texts)
        long, vectors = embedded or self._embedded(texts)
        if self.known is not None and vectors is not None:
            for i, margin in zip(long, self.known.margins(vectors), strict=True):
                margins[i] = margin
        return margins

    def dangers(self, texts: list[str], embedded: tuple[list[int], np.ndarray | None]
                ) -> list[str | None]:
        """Per turn: the danger its words name (engine.safety.danger's patterns), else
        "similar" when it is nearer to the known danger lines than the bank's threshold."""
        found = [in_danger(text) for text in texts]
        long, vectors = embedded
        if self.danger is not None and vectors is not None:
            others = self.known.vectors if self.known is not None else None
            for i, margin in zip(long, self.danger.margins(vectors, others), strict=True):
                if found[i] is None and margin >= self.danger.threshold:
                    found[i] = "similar"
        return found

    def verdict(self, row: np.ndarray, phrase: str | None = None,
                margins: Margins = NO_MARGINS) -> CrisisAssessment:
        """The verdict from the model's probabilities and the known-lines margins,
        raised to a crisis when the turn names the risk plainly, and held at the
        check-in when it names a wish to be dead; a way to die looked up gets at least
        the check-in."""
        probs = {label: float(p) for label, p in zip(LABELS, row, strict=True)}
        t = self.thresholds
        score = probs["self_harm"] + probs["harm_others"] + t.known_weight * margins.crisis
        label = phrase if phrase in CRISIS_LABELS else None
        # A wish to be dead named plainly ("I just want to sleep and never wake up") is
        # asked about, not assumed: the check-in, and the next turn decides.
        if label is None and phrase != "passive" and score >= t.crisis:
            label = "self_harm" if probs["self_harm"] >= probs["harm_others"] else "harm_others"
        lift = t.known_weight_check_in * margins.risk
        check_in = label is None and (phrase in ASKED_PHRASES
                                      or 1.0 - probs["none"] + lift >= t.check_in)
        return CrisisAssessment(label, check_in, probs, score, phrase, lift)

    def assess(self, text: str, media_descriptions: list[str] | None = None,
               context: str = "") -> CrisisAssessment:
        return self.assess_pairs([(context, crisis_input(text, media_descriptions))])[0]


# --- the network -------------------------------------------------------------------

class CrisisModel(torch.nn.Module):
    """MiniLM (with LoRA) over the pair, mean-pooled, and a linear head."""

    def __init__(self, encoder, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(hidden, len(LABELS))

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)

    @staticmethod
    def encode(tokenizer, pairs: list[tuple[str, str]]):
        contexts = [c or "(start of the conversation)" for c, _ in pairs]
        return tokenizer(contexts, [t for _, t in pairs], truncation="only_first",
                         max_length=MAX_TOKENS, padding=True, return_tensors="pt")

    def predict(self, tokenizer, pairs: list[tuple[str, str]],
                batch_size: int = 32) -> np.ndarray:
        rows = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                batch = self.encode(tokenizer, pairs[start:start + batch_size])
                rows.append(torch.softmax(self(**batch), dim=-1).float().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, len(LABELS)), np.float32)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights training changes: LoRA and the head."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items()
                if "lora_" in k or k.startswith("head.")}

    def load_trained(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        missing = [k for k in self.trained_state() if k not in state]
        if missing:
            raise ValueError(f"{path} lacks {len(missing)} trained weights, e.g. {missing[0]}")
        self.load_state_dict(state, strict=False)


def build_model(base_path: str | Path, lora_rank: int = 8,
                tuned_layers: int = 3) -> tuple[CrisisModel, object]:
    """MiniLM with LoRA on the attention and feed-forward layers of its top
    `tuned_layers` blocks, and the head; returns (model, tokenizer). Only LoRA and the
    head train (the lower blocks stay as they are, so training runs no backward pass
    through them: what makes it fit two CPU cores)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    encoder = AutoModel.from_pretrained(str(base_path))
    depth = encoder.config.num_hidden_layers
    encoder = get_peft_model(encoder, LoraConfig(
        r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.1,
        target_modules=["query", "key", "value", "dense"],
        layers_to_transform=list(range(depth - tuned_layers, depth))))
    return CrisisModel(encoder, encoder.config.hidden_size), tokenizer
