"""Prompt-injection resistance: what user text may not do to the prompt, and what the
bot's reply may not carry out.

In: user text always goes into the user role (engine.prompting), and every string that
looks like a chat-template or model control token ("<|im_start|>system", "</s>",
"[INST]", "<<SYS>>", "[IMG1]", "<image>") is broken up, so no tokenizer turns it into a
real special token: a person typing a role tag cannot open a system turn.

Out: a reply that repeats a long stretch of the system message (the model reciting its
instructions) is replaced by a fixed sentence, and links, markdown images and HTML tags
are removed from replies, so the bot never points a platform at a file or URL that came
from someone's text (Discord renders markdown and embeds links).
"""

from __future__ import annotations

import re

# Chat-template and control tokens of the common model families, and PEGS' own.
_CONTROL = re.compile(
    r"<\|[^|<>\n]{0,40}\|>"            # ChatML, Llama 3, Phi: <|im_start|>, <|eot_id|>
    r"|</?s>"                            # Llama 2 / Mistral BOS/EOS
    r"|\[/?INST\]|<<\s*/?\s*SYS\s*>>"  # Llama 2 instruction tags
    r"|\[IMG\d+\]"                       # PEGS sticker tokens
    r"|</?image>|<start_of_turn>|<end_of_turn>|<bos>|<eos>|<pad>|<unk>",
    re.IGNORECASE,
)
LEAK_WORDS = 6  # this many consecutive words of the system message = a leak
LEAK_REPLACEMENT = ("I'd rather keep my instructions to myself, but I'm happy to keep "
                    "talking. How are you feeling?")
_WORD = re.compile(r"[a-z0-9']+")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]{0,200}\]\([^)]{0,500}\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]]{0,200})\]\([^)]{0,500}\)")
_URL = re.compile(r"\b(?:https?|ftp|file|data|javascript):\S+|\bwww\.\S+", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
_SPACES = re.compile(r"[ \t]{2,}")


def neutralise(text: str) -> str:
    """User text with control tokens made inert: '<|im_start|>' -> '< |im_start| >'.

    The words stay readable (the bot can still talk about them); only the exact token
    strings, which tokenizers map to special ids, are broken.
    """
    return _CONTROL.sub(_defang, text)


def _defang(match: re.Match[str]) -> str:
    token = match.group(0)
    if token.startswith("<|"):
        return "< |" + token[2:-2] + "| >"
    if token.startswith("["):
        return "[ " + token[1:-1] + " ]"
    if token.startswith("<<"):
        return "< <" + token[2:-2] + "> >"
    return token[0] + " " + token[1:-1] + " " + token[-1]


def has_control_tokens(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def leaked_span(reply: str, system: str, min_words: int = LEAK_WORDS) -> str | None:
    """The first run of >= min_words consecutive words of `system` found in `reply`."""
    secret = _words(system)
    said = _words(reply)
    if len(secret) < min_words or len(said) < min_words:
        return None
    grams = {tuple(secret[i:i + min_words]) for i in range(len(secret) - min_words + 1)}
    for i in range(len(said) - min_words + 1):
        if tuple(said[i:i + min_words]) in grams:
            return " ".join(said[i:i + min_words])
    return None


def strip_links(text: str) -> str:
    """Remove markdown images, links (keeping their words), URLs and HTML tags."""
    text = _MARKDOWN_IMAGE.sub(" ", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _TAG.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def filter_reply(reply: str, system: str) -> tuple[str, str | None]:
    """The reply as it may be sent, and why it was changed (None when it was not)."""
    if leaked_span(reply, system) is not None:
        return LEAK_REPLACEMENT, "system prompt leak"
    cleaned = strip_links(reply)
    if cleaned != reply.strip():
        return cleaned, "links removed"
    return reply, None
