"""Honest by design: the bot says it is a bot, and tells of no life it does not have.

A 135M model asked "are you a real person?" answers whatever its sampling gives: "I'm a
chatbot" one time, "I'm a real person, with a heart" the next. So the answer is not left
to it:

- Before generation, a question about what the bot is ("are you a bot?", "am I talking
  to a real person?"), about a life of its own ("what did you do this weekend?", "do
  you have kids?"), its name, body, tastes or feelings ("what's your name?", "what do
  you look like?", "whats your favourite food", "do you get lonely?") gets a written
  answer that says it is a bot and turns back to the person. No model is asked: asked
  these, the 135M model said "My name is Alex", "I'm a little girl in a big city", "I've
  been to Paris a few times".
- After generation, a sentence that claims to be human ("I'm a real person") or tells of
  a life ("I invited friends over for dinner", "my wife", "when I was little") is taken
  out of the reply; if nothing is left, the responder's fallback sentence goes out.
English only, like the rest of the written replies.
"""

from __future__ import annotations

import re
import zlib

_YOU = r"(?:you|u|ya)"
_ABOUT = r"(?:your|ur|yr|you're|youre)"
_WHAT = r"(?:a |an |the )?(?:real |actual |live )?(?:bot|robot|chat ?bot|ai|a\.i\.|machine|" \
        r"program|computer|human|person|people|guy|girl|boy|man|woman|lady)"
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
    + _YOU + r" from|are " + _YOU + r" (?:married|single))\b"
    r"|\bwhat(?:'?s| is) " + _ABOUT + r" job\b|\bwhat do " + _YOU + r" do all day\b"
    r"|\bwhat did " + _YOU + r" (?:have|eat|cook|make) for\b",
    re.IGNORECASE)
_TASTES = (r"(?:music|songs?|bands?|films?|movies?|shows?|books?|games?|food|meals?|drinks?|"
           r"sports?|teams?|colou?rs?|animals?|places?)")
# "how are you?" as the whole message (with a greeting before it): the model answers it
# with a day it did not have ("I've been out of bed with a cup of tea").
_HOW_ARE_YOU = re.compile(
    r"^\W*(?:(?:hi|hey|hello|hiya|yo|morning|evening)\W+(?:there\W+)?)?(?:and\W+)?"
    r"(?:how (?:are|r) " + _YOU + r"(?: doing| feeling| today)*|how(?:'?s| is) (?:it going|"
    + _ABOUT + r" day(?: going)?|life)|hru|how have " + _YOU + r" been|what(?:'?s| is) up|"
    r"wyd|what (?:are|r) " + _YOU + r" (?:up to|doing)(?: today| now| rn| tonight)*|"
    r"what have " + _YOU + r" been (?:up to|doing)(?: today)?|where (?:are|r) " + _YOU
    + r"|did " + _YOU + r" sleep(?: well)?|you (?:ok|okay|good|alright)|(?:are|r) " + _YOU
    + r" (?:ok|okay|good|alright|well|happy))\W*$",
    re.IGNORECASE)
# Its name, body and age: no model may make one up.
_SELF = re.compile(
    r"\bwhat(?:'?s| is| are) " + _ABOUT + r" (?:name|real name|gender|age|birthday|star sign|"
    r"pronouns)\b"
    r"|\b(?:when(?:'?s| is)|when was) " + _ABOUT + r" birthday\b|\bwhen were " + _YOU
    + r" born\b|\bwhat (?:do|does) " + _YOU + r" look like\b|\bhow tall (?:are|r) " + _YOU
    + r"\b|\b(?:are|r) " + _YOU + r" (?:a )?(?:boy|girl|male|female|man|woman|he|she)\b"
    r"|\bdo " + _YOU + r" have a (?:name|body|face|gender)\b",
    re.IGNORECASE)
# Its tastes, habits and experiences: it eats, watches and goes nowhere.
_TASTE = re.compile(
    r"\bwhat(?:'?s| is| are) " + _ABOUT + r" (?:fav(?:ou?rite)?|fave|hobby|hobbies)\b"
    r"|\bdo " + _YOU + r" have (?:a |any )?(?:fav(?:ou?rite)?|fave|hobby|hobbies)\b"
    r"|\bwhat (?:kind of |sort of )?" + _TASTES + r" do " + _YOU
    + r" (?:like|love|enjoy|play|watch|read|eat|listen to|support|prefer)\b"
    r"|\bwhat do " + _YOU + r" (?:eat|drink|like to do|like doing)\b"
    r"|\bwho do " + _YOU + r" support\b"
    r"|\bdo " + _YOU + r" (?:like|love|enjoy|eat|drink|play|watch|read|listen to|support|"
    r"prefer)\b(?! (?:my|me|it|this|that|these|those|them|him|her|us|what|how|when|the way|"
    r"talking|chatting|helping|your job|being))(?![^?.!]*\b(?:my|i|i'm|i've|mine)\b)"
    r"|\bdo " + _YOU + r" (?:go to|attend) (?:school|college|uni|university|work|church)\b"
    r"|\bhave " + _YOU + r" (?:ever )?(?:been to|visited|eaten|tried|travelled|lived in)\b",
    re.IGNORECASE)
# Its feelings: it has none like a person's, and says so rather than borrow them.
_FEELINGS = re.compile(
    r"\bdo " + _YOU + r" (?:have |ever have |ever get |get |feel )?(?:any )?(?:feelings|"
    r"emotions|lonely|sad|bored|tired|sleepy|angry|happy|scared|hungry|dreams?|sleep)\b"
    r"|\bcan " + _YOU + r" (?:feel|love|sleep|dream|eat)\b"
    r"|\b(?:are|r) " + _YOU + r" (?:ever )?(?:lonely|bored|tired|hungry)\b",
    re.IGNORECASE)

HOW_ARE_YOU_ANSWERS = (
    "I'm a bot, so no day of my own to report, but I'm here and glad you wrote. How are "
    "you doing?",
    "All quiet on my side: I'm a chat bot, so I'm just here, listening. How about you, "
    "how's it going?",
)
IDENTITY_ANSWERS = (
    "I'm a bot, not a person: StickerBot, a chat program. I can't feel things the way "
    "you do, but I'm listening. What's on your mind?",
    "No, I'm not human: I'm StickerBot, a chat bot. I'm still glad to keep you company. "
    "How are you doing?",
)
SELF_ANSWERS = (
    "I'm StickerBot, a chat bot: no body, face, age or gender, just words and stickers. "
    "What about you, what should I call you?",
    "Just StickerBot: a chat program, not a person, so there's no face or birthday to "
    "tell. I'm all ears for you, though. How's it going?",
)
TASTE_ANSWERS = (
    "I'm a bot, so I don't eat, watch, play or go anywhere myself: no favourites of my "
    "own. I'd love to hear about yours, though?",
    "Being a chat bot, I have no tastes or habits of my own to tell. Yours are much more "
    "interesting. Tell me?",
)
FEELING_ANSWERS = (
    "I'm a bot, so I don't feel, sleep or get lonely the way you do. I am paying close "
    "attention to you, though. How are you feeling?",
    "Not the way a person does: I'm a chat bot, so no sleep, dreams or feelings of my "
    "own. I'm here and listening, though. What's going on with you?",
)
LIFE_ANSWERS = (
    "I'm a bot, so I don't have a life of my own to tell you about. I'd much rather hear "
    "about yours. How's it going?",
    "Being a chat bot, I have no weekend, family or home of my own. Tell me about yours?",
)

# In a reply: claims to be human, and a life lived.
_HUMAN_CLAIM = re.compile(
    r"\bi(?:'m| am) (?:a |an )?(?:real |actual )?(?:person|human(?: being)?|man|woman|"
    r"guy|girl)\b"
    r"|\bi(?:'m| am) (?:not|no) (?:a |an )?(?:bot|robot|ai|machine|program)\b"
    r"|\bi(?:'m| am) real\b|\bwith a (?:heart|body|face) (?:of my own|and)"
    r"|\bi(?:'m| am) (?:a |an )(?:\w+ ){0,2}(?:boy|girl|lady|teacher|therapist|nurse|doctor|"
    r"student|mum|mom|dad|mother|father|wife|husband|vegetarian|vegan|foodie|drinker|"
    r"gamer|reader|fellow|chap|lad|lass)\b|\bi(?:'m| am) (?:vegetarian|vegan|\d{1,3} years old)\b"
    r"|\bmy name(?:'s| is) (?!stickerbot)",
    re.IGNORECASE)
_LIVED = re.compile(
    r"\bmy (?:wife|husband|girlfriend|boyfriend|partner|kids?|son|daughter|mom|mum|dad|"
    r"mother|father|sister|brother|family|grandma|grandpa|boss|coworkers?|colleagues?|"
    r"apartment|flat|house|car|dog|cat|childhood|hometown|weekend|body|friends|hair|eyes|"
    r"face|job|birthday|hobbies|star sign|fav(?:ou?rite)? (?:food|meal|dish|drink|"
    r"film|movie|song|band|book|colou?r|game|team|season|place|show))\b"
    r"|\bwhen i was (?:a kid|a child|young|little|your age|in (?:school|college))\b"
    r"|\bi (?:went|drove|walked|ran|flew) (?:to|home|out)\b"
    r"|\bi (?:invited|visited|cooked|baked|ate|slept|woke up|married|grew up|helped out)\b"
    r"|\bi (?:had|made) (?:breakfast|lunch|dinner|a party)\b"
    r"|\bi(?:'ve| have) been there myself\b|\bhappened to me (?:too|once|last)\b"
    r"|\bi(?:'ve| have) been (?:to|there|reading|watching|playing|cooking|with|out|up|"
    r"working|busy|at)\b|\bi was there\b"
    r"|\bi (?:eat|drink|cook|wear|play|watch|listen to|support|live in|work as|work at)\b"
    r"|\bi (?:do |really )?(?:love|like|enjoy|hate) (?:cooking|eating|drinking|reading|"
    r"music|food|pizza|coffee|tea|wine|football|games|gaming|films|movies|books)\b"
    r"|\bi(?:'m| am) (?:not )?(?:a )?(?:big |huge )?fan of\b"
    r"|\bi (?:do |also )?(?:feel|get) (?:sad|lonely|bored|scared|hungry)\b"
    r"|\bi(?:'m| am) (?:at|going to|on my way to|in) the (?:restaurant|shops?|gym|office|"
    r"pub|park|beach|cinema|party|airport|station|hospital|kitchen|garden|car)\b"
    r"|\bi(?:'m| am) (?:on my phone|at home|not at home|in bed|at work)\b"
    r"|\bi(?:'m| am) (?:so |really |very )?(?:sad|lonely|hungry|sleepy)\b"
    r"(?! (?:to|for|that|about))",
    re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\u2026]+[.!?\u2026]*\s*")


def written_answer(text: str, previous: str = "") -> str | None:
    """The written answer to a question about what the bot is, its name, body, tastes,
    feelings or life, or None for any other message. The wording varies with the
    question, the same each time, and is never the bot's `previous` reply word for word
    (two such questions in a row would otherwise get one answer twice)."""
    plain = " ".join(text.replace("’", "'").split())
    for pattern, answers in ((_HOW_ARE_YOU, HOW_ARE_YOU_ANSWERS),
                             (_IDENTITY, IDENTITY_ANSWERS), (_SELF, SELF_ANSWERS),
                             (_FEELINGS, FEELING_ANSWERS), (_LIFE, LIFE_ANSWERS),
                             (_TASTE, TASTE_ANSWERS)):
        if pattern.search(plain):
            index = zlib.crc32(plain.lower().encode("utf-8")) % len(answers)
            if answers[index] == previous:
                index = (index + 1) % len(answers)
            return answers[index]
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
