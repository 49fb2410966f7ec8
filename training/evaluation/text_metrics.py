"""Text metrics of the STICKERCONV paper (Table 1): BLEU-1..4, Dist-1..3, ROUGE-L, METEOR,
CIDEr and BERTScore.

BLEU, Dist-n, ROUGE-L and CIDEr are written here (a few lines each) so their exact
definitions are visible and no Java or download is needed; tests check each against the
reference package (sacrebleu, rouge-score, pycocoevalcap) on fixed examples. METEOR
calls NLTK's implementation with Debian's WordNet, which this module copies into an
NLTK data folder on first use. BERTScore uses the `bert-score` package on the local
all-MiniLM-L6-v2 (6 layers): the paper's roberta-large is not available offline, so
its numbers are labelled `bertscore_minilm_*` and are not comparable with the paper's.

All scores are on a 0-1 scale except CIDEr (0-10, as pycocoevalcap reports it).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")

WORDNET_DEBS = "wordnet-base wordnet-sense-index"


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with English clitics kept) and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------- BLEU


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                max_n: int = 4) -> float:
    """Corpus BLEU-`max_n` (Papineni et al.): clipped n-gram precisions pooled over the
    corpus, geometric mean of orders 1..max_n, brevity penalty; no smoothing (0 when an
    order has no match), one reference per hypothesis. Matches sacrebleu with
    `tokenize="none", smooth_method="none"` on the same tokens."""
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_n + 1):
            hyp_counts = Counter(ngrams(hyp, n))
            ref_counts = Counter(ngrams(ref, n))
            matches[n - 1] += sum(min(c, ref_counts[g]) for g, c in hyp_counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0 or any(m == 0 for m in matches):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


# ---------------------------------------------------------------- Dist-n


def distinct_n(hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Dist-n (Li et al. 2016): distinct n-grams / all n-grams over all hypotheses."""
    grams = [g for hyp in hypotheses for g in ngrams(hyp, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


# ---------------------------------------------------------------- ROUGE-L


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """Sentence ROUGE-L F1 (beta = 1, as rouge-score): LCS-based precision and recall."""
    if not hypothesis or not reference:
        return 0.0
    lcs = _lcs(hypothesis, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- CIDEr


def _cider_vector(tokens: Sequence[str], df: Counter, log_n_docs: float, max_n: int
                  ) -> tuple[list[dict], list[float], int]:
    vectors: list[dict] = [{} for _ in range(max_n)]
    norms = [0.0] * max_n
    counts = Counter(g for n in range(1, max_n + 1) for g in ngrams(tokens, n))
    length = 0
    for gram, tf in counts.items():
        n = len(gram) - 1
        weight = tf * (log_n_docs - math.log(max(1.0, df[gram])))
        vectors[n][gram] = weight
        norms[n] += weight * weight
        if n == 1:  # pycocoevalcap counts bigrams as "length"; kept for agreement
            length += tf
    return vectors, [math.sqrt(x) for x in norms], length


def corpus_cider(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                 max_n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr as pycocoevalcap computes it (Vedantam et al., with its clipping and
    Gaussian length penalty): TF-IDF n-gram cosine, IDF from this corpus' references,
    mean over n = 1..4, times 10. `references[i]` is a list of token lists."""
    if not hypotheses:
        return 0.0
    df: Counter = Counter()
    for refs in references:
        df.update({g for ref in refs for n in range(1, max_n + 1) for g in ngrams(ref, n)})
    log_n_docs = math.log(float(len(references)))
    scores = []
    for hyp, refs in zip(hypotheses, references, strict=True):
        h_vec, h_norm, h_len = _cider_vector(hyp, df, log_n_docs, max_n)
        total = np.zeros(max_n)
        for ref in refs:
            r_vec, r_norm, r_len = _cider_vector(ref, df, log_n_docs, max_n)
            penalty = math.exp(-((h_len - r_len) ** 2) / (2 * sigma ** 2))
            for n in range(max_n):
                value = sum(min(w, r_vec[n].get(g, 0.0)) * r_vec[n].get(g, 0.0)
                            for g, w in h_vec[n].items())
                if h_norm[n] and r_norm[n]:
                    value /= h_norm[n] * r_norm[n]
                total[n] += value * penalty
        scores.append(float(np.mean(total)) / len(refs) * 10.0)
    return float(np.mean(scores))


# ---------------------------------------------------------------- METEOR


def nltk_data_dir() -> Path:
    """Where the WordNet copy for NLTK lives: $STICKERBOT_NLTK_DATA or a user cache."""
    env = os.environ.get("STICKERBOT_NLTK_DATA")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "stickerbot" / "nltk_data"


# WordNet 3.0's lexicographer files, in file-number order; Debian does not ship `lexnames`.
_LEXNAMES = (
    "adj.all 3|adj.pert 3|adv.all 4|noun.Tops 1|noun.act 1|noun.animal 1|noun.artifact 1|"
    "noun.attribute 1|noun.body 1|noun.cognition 1|noun.communication 1|noun.event 1|"
    "noun.feeling 1|noun.food 1|noun.group 1|noun.location 1|noun.motive 1|noun.object 1|"
    "noun.person 1|noun.phenomenon 1|noun.plant 1|noun.possession 1|noun.process 1|"
    "noun.quantity 1|noun.relation 1|noun.shape 1|noun.state 1|noun.substance 1|noun.time 1|"
    "verb.body 2|verb.change 2|verb.cognition 2|verb.communication 2|verb.competition 2|"
    "verb.consumption 2|verb.contact 2|verb.creation 2|verb.emotion 2|verb.motion 2|"
    "verb.perception 2|verb.possession 2|verb.social 2|verb.stative 2|verb.weather 2|adj.ppl 3"
).split("|")


def prepare_wordnet(source: Path = Path("/usr/share/wordnet"), target: Path | None = None
                    ) -> Path:
    """Copy Debian's WordNet into `<target>/corpora/wordnet` (NLTK reads only its data
    path) and write the `lexnames` file; idempotent. Returns the NLTK data folder."""
    target = target or nltk_data_dir()
    folder = target / "corpora" / "wordnet"
    if (folder / "lexnames").exists() and (folder / "data.noun").exists():
        return target
    if not (source / "data.noun").exists() or not (source / "index.sense").exists():
        raise FileNotFoundError(
            f"WordNet not found under {source}: METEOR needs the Debian packages "
            f"{WORDNET_DEBS} (make debs, or apt-get install {WORDNET_DEBS})")
    folder.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, folder / path.name)
    lines = [f"{i:02d}\t{name.split()[0]}\t{name.split()[1]}" for i, name in enumerate(_LEXNAMES)]
    (folder / "lexnames").write_text("\n".join(lines) + "\n")
    return target


_WORDNET = None


def wordnet():
    """NLTK's WordNet reader over the prepared copy (loaded once per process)."""
    global _WORDNET
    if _WORDNET is None:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        root = prepare_wordnet()
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        with warnings.catch_warnings():  # "multilingual functions not available": not used
            warnings.simplefilter("ignore", UserWarning)
            _WORDNET = WordNetCorpusReader(str(nltk.data.find("corpora/wordnet")), None)
    return _WORDNET


def meteor(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """Sentence METEOR (NLTK: exact, Porter-stem and WordNet-synonym matches)."""
    from nltk.translate.meteor_score import meteor_score

    return float(meteor_score([list(reference)], list(hypothesis), wordnet=wordnet()))


# ---------------------------------------------------------------- BERTScore


def bertscore_minilm(hypotheses: list[str], references: list[str],
                     model_path: str | Path | None = None, batch_size: int = 32
                     ) -> tuple[float, float, float]:
    """Mean BERTScore (P, R, F1) with the local all-MiniLM-L6-v2, all 6 layers, no
    IDF and no baseline rescaling (the `bert-score` package's greedy cosine matching)."""
    if not hypotheses:
        return 0.0, 0.0, 0.0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bert_score import score

    from engine.embeddings import default_minilm_path

    path = str(model_path or default_minilm_path())
    p, r, f = score(hypotheses, references, model_type=path, num_layers=6,
                    batch_size=batch_size, device="cpu", verbose=False)
    return float(p.mean()), float(r.mean()), float(f.mean())


# ---------------------------------------------------------------- all together


def text_metrics(hypotheses: list[str], references: list[str], *, bertscore: bool = True
                 ) -> dict[str, float]:
    """Every text metric of Table 1 over aligned hypothesis/reference strings."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyps = [tokenize(h) for h in hypotheses]
    refs = [tokenize(r) for r in references]
    out: dict[str, float] = {}
    for n in range(1, 5):
        out[f"bleu_{n}"] = corpus_bleu(hyps, refs, n)
    for n in range(1, 4):
        out[f"dist_{n}"] = distinct_n(hyps, n)
    count = max(len(hyps), 1)
    out["rouge_l"] = sum(rouge_l(h, r) for h, r in zip(hyps, refs, strict=True)) / count
    out["meteor"] = sum(meteor(h, r) for h, r in zip(hyps, refs, strict=True)) / count
    out["cider"] = corpus_cider(hyps, [[r] for r in refs])
    if bertscore:
        p, r, f = bertscore_minilm(hypotheses, references)
        out.update(bertscore_minilm_p=p, bertscore_minilm_r=r, bertscore_minilm_f1=f)
    return out
