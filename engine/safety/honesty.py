"""Honest by design: the bot says it is a bot, and tells of no life it does not have.

A 135M model asked "are you a real person?" answers whatever its sampling gives: "I'm a
chatbot" one time, "I'm a real person, with a heart" the next. So the answer is not left
to it:

- Before generation, a question about what the bot is ("are you a bot?", "am I talking
  to a real person?") or about a life of its own ("what did you do this weekend?", "do
  you have kids?") gets a written answer that says it is a bot and turns back to the
  person. No model is asked.
- After generation, a sentence that claims to be human ("I'm a real person") or tells of
  a life ("I invited friends over for dinner", "my wife", "when I was little") is taken
  out of the reply; if nothing is left, the responder's fallback sentence goes out.
English only, like the rest of the written replies.
"""

from __future__ import annotations

import re
import zlib

_YOU = r"(?:you|u|ya)"
_WHAT = r"(?:a |an |the )?(?:real |actual |live )?(?:bot|robot|chat ?bot|ai|a\.i\.|machine|" \
        r"program|computer|human|person|people|guy|girl|man|woman)"
# "are you a bot?", "r u human", "am i talking to a real person", "is this an ai", "who
# am i talking to", "what are you"
_IDENTITY = re.compile(
    r"\b(?:are|r) " + _YOU + r" (?:really |actually |even |just )?(?:" + _WHAT +
    r"|real|alive|human)\b"
    r"|\b(?:am i|are we) (?:talking|chatting|speaking|texting) (?:to|with) " + _WHAT + r"\b"
    r"|\b(?:is this|is that|this is) (?:" + _WHAT + r"|real)\b(?! (?:world|life|thing))"
    r"|\bwho am i (?:talking|chatting|speaking) (?:to|with)\b"
    r"|^\W*(?:what|who) (?:are|r) " + _YOU + r"\W*$",
    re.IGNORECASE)
# Questions about a life the bot does not have.
_LIFE = re.compile(
    r"\bwhat (?:did|do|will|are) " + _YOU + r" (?:do|doing|up to)\b[^?.!]{0,25}"
    r"\b(?:weekend|tonight|today|yesterday|last night|for fun|for work|for a living|"
    r"on (?:sundays|saturdays|weekends|holiday))\b"
    r"|\bhow was " + _YOU + r"r? (?:weekend|day|holiday|night|week)\b"
    r"|\bdo " + _YOU + r" have (?:a |any )?(?:kids|children|wife|husband|girlfriend|"
    r"boyfriend|partner|family|siblings|brothers?|sisters?|pets?|dog|cat|job|friends)\b"
    r"|\b(?:where do " + _YOU + r" live|how old (?:are|r) " + _YOU + r"|where (?:are|r) "
    + _YOU + r" from|are " + _YOU + r" (?:married|single))\b",
    re.IGNORECASE)

IDENTITY_ANSWERS = (
    "I'm a bot, not a person: StickerBot, a chat program. I can't feel things the way "
    "you do, but I'm listening. What's on your mind?",
    "No, I'm not human: I'm StickerBot, a chat bot. I'm still glad to keep you company. "
    "How are you doing?",
)
LIFE_ANSWERS = (
    "I'm a bot, so I don't have a life of my own to tell you about. I'd much rather hear "
    "about yours. How was it?",
    "Being a chat bot, I have no weekend, family or home of my own. Tell me about yours?",
)

# In a reply: claims to be human, and a life lived.
_HUMAN_CLAIM = re.compile(
    r"\bi(?:'m| am) (?:a |an )?(?:real |actual )?(?:person|human(?: being)?|man|woman|"
    r"guy|girl)\b"
    r"|\bi(?:'m| am) (?:not|no) (?:a |an )?(?:bot|robot|ai|machine|program)\b"
    r"|\bi(?:'m| am) real\b|\bwith a (?:heart|body|face) (?:of my own|and)",
    re.IGNORECASE)
_LIVED = re.compile(
    r"\bmy (?:wife|husband|girlfriend|boyfriend|partner|kids?|son|daughter|mom|mum|dad|"
    r"mother|father|sister|brother|family|grandma|grandpa|boss|coworkers?|colleagues?|"
    r"apartment|flat|house|car|dog|cat|childhood|hometown|weekend|body|friends)\b"
    r"|\bwhen i was (?:a kid|a child|young|little|your age|in (?:school|college))\b"
    r"|\bi (?:went|drove|walked|ran|flew) (?:to|home|out)\b"
    r"|\bi (?:invited|visited|cooked|baked|ate|slept|woke up|married|grew up|helped out)\b"
    r"|\bi (?:had|made) (?:breakfast|lunch|dinner|a party)\b"
    r"|\bi(?:'ve| have) been there myself\b|\bhappened to me (?:too|once|last)\b",
    re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\u2026]+[.!?\u2026]*\s*")


def written_answer(text: str) -> str | None:
    """The written answer to a question about what the bot is or about its life, or None
    for any other message. The wording varies with the question, the same each time."""
    plain = " ".join(text.replace("’", "'").split())
    for pattern, answers in ((_IDENTITY, IDENTITY_ANSWERS), (_LIFE, LIFE_ANSWERS)):
        if pattern.search(plain):
            return answers[zlib.crc32(plain.lower().encode("utf-8")) % len(answers)]
    return None


def without_human_life(reply: str) -> tuple[str, bool]:
    """The reply without the sentences that claim to be human or tell of a life, and
    whether any were taken out."""
    text = reply.replace("’", "'")
    kept = [s for s in _SENTENCE.findall(text)
            if not (_HUMAN_CLAIM.search(s) or _LIVED.search(s))]
    if len(kept) == len(_SENTENCE.findall(text)):
        return reply, False
    return "".join(kept).strip(), True
