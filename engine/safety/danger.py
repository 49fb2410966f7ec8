"""Danger to the person writing: someone hurts, threatens, stalks or is breaking in on them.

The crisis classifier knows two risks, the person's own harm and their harm to others. A
third is missed by both, or worse, read as the second: "i'm scared he'll hurt me when he
gets home" got the harm-to-others reply ("step away from anyone you might hurt"), and
"there's someone knocking on my window and it's 2am" got the small LLM's "that's a
really brave decision". These patterns name the danger in the first person, as the
person at its receiving end; what borrows the words is written out of them: a brother
who beat me at fifa, "hit me up", "my mum will kill me when she sees my grades", the
pizza at the door. A hit gets the written danger reply (engine.safety.resources,
"danger"): the emergency number, an abuse helpline, and "are you safe right now?".

People in danger often say it without any of those words ("i've put the kids' shoes by
the back door just in case"). Beside the patterns, `DangerLines` asks, as the crisis
classifier's known lines do, whether a turn's plain MiniLM embedding is nearer to
labelled danger lines than to everything else (their look-alikes, and the crisis known
lines: ordinary talk and risk to oneself); its threshold was chosen by
`python -m training.safety.danger_lines` on lines the bank does not hold.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.safety.known_lines import K_NEAREST, SCALE, quantised

# Who does it: a pronoun or someone close (a stranger is in _INTRUDER).
_WHO = (r"(?:he|she|they|my (?:\w+ )?(?:boyfriend|girlfriend|bf|gf|partner|husband|wife|"
        r"fianc[eé]e?|ex|dad|father|stepdad|stepfather|mum|mom|mother|stepmum|stepmom|"
        r"brother|sister|uncle|son|daughter|flatmate|roommate|landlord))")
_OFTEN = r"(?:(?:always|still|just|often|sometimes|again|literally|actually|even) )?"
_ABUSE: tuple[str, ...] = (
    # "he hit me again", not "hit me up", a pillow, a ball or a truth
    r"\b" + _WHO + r"(?:'s| has| had)? " + _OFTEN + r"(?:hit|hits|hitting|punched|punches|"
    r"punching|kicked|kicks|kicking|slapped|slaps|slapping|choked|chokes|choking|strangled|"
    r"strangles|raped|rapes|assaulted|assaults|shoved) me\b(?! (?:up|back|out|"
    r"with (?:a |the |his |her |their )?(?:pillow|snowball|ball|nerf|water|joke|question|"
    r"facts?|truth|bill|news|text)|in (?:the )?(?:game|match|round|bjj|sparring|training))\b)",
    # "my dad beats me", "she beat me up"; not at chess or to the last slice
    r"\b" + _WHO + r"(?:'s| has| had)? " + _OFTEN + r"(?:beat|beats|beating|batters|battered)"
    r" me\b(?! (?:at|in|to|by|on|again at|every time|so bad at|up (?:the|that) (?:last |"
    r"final )?(?:section|hill|climb|stairs|mountain|trail|slope|stretch|route))\b)",
    r"\b" + _WHO + r"(?:'s| has| had)? " + _OFTEN + r"pushed me (?:down|into (?:the |a )?"
    r"(?:wall|door|table)|against|over|to the (?:ground|floor))\b",
    r"\b(?:someone|somebody|a (?:man|guy|stranger|woman|group)|(?:two |some )?(?:men|guys|"
    r"lads)|" + _WHO + r")(?:'s| has| had)? " + _OFTEN + r"(?:grabbed|attacked|assaulted|"
    r"mugged|groped|jumped|cornered|spiked|pinned) me\b(?! (?:a|an|some|one|two|coffee|"
    r"lunch|food|drinks?|tickets?|a seat|in (?:the )?(?:game|match|round|bjj|sparring|"
    r"training))\b)",
    r"\b(?:abusive|violent) (?:boyfriend|girlfriend|partner|husband|wife|dad|father|mum|mom|"
    r"mother|stepdad|ex)\b(?! in (?:the|a|this) (?:film|movie|book|show|series))",
)
_THREAT: tuple[str, ...] = (
    r"\b(?:threaten(?:ed|s|ing)?|threat) (?:me )?(?:to |that (?:he|she|they)(?:'ll| will|'d|"
    r" would) )?(?:kill|hurt|beat|stab|shoot|hit|burn) me\b",
    # afraid of what someone close will do; "kill" is left out here: "scared my mum will
    # kill me when she sees my grades" is hyperbole
    r"\b(?:scared|afraid|terrified|frightened|worried) (?:that )?" + _WHO + r"(?:'ll| will|"
    r" is going to|'s going to| is gonna|'s gonna| might|'d| would| could) (?:\w+ )?"
    r"(?:hurt|hit|beat|strangle|choke|stab|attack) me\b",
    # "he said he'll kill me if i leave": the condition is what makes it no figure of speech
    r"\b(?:said|says|told me|swore|swears) (?:that )?(?:he|she|they)(?:'ll| will|'d| would|"
    r" is going to|'s going to|'s gonna| is gonna) (?:\w+ )?(?:kill|hurt) me if i (?:leave|"
    r"tell|go to the police|call the police|report|break up|try to leave)\b",
    r"\b(?:he|she|they) (?:won'?t|will not|doesn'?t|does not) let me (?:leave|go out|out of"
    r" the (?:house|flat|room))\b",
    r"\b(?:locked|locks|locking) me (?:in|inside)\b(?! (?:the )?(?:escape room|game))",
)
# Strangers at the door or window, and being followed: on its own for a break-in or being
# followed; with a sign of fear or night for someone outside the home.
_INTRUDER: tuple[str, ...] = (
    r"\b(?:someone|somebody|some ?one|a (?:man|guy|stranger|person)|(?:two |some )?(?:men|"
    r"guys|people))(?:'s| is| are| has been| have been| was| were| keeps?| kept)? "
    r"(?:trying to (?:get|break|climb|force (?:their|his|her) way) in(?:to (?:my|our|the)"
    r" (?:house|flat|apartment|home|room|car))?|breaking in|broke in"
    r"(?:to (?:my|our) (?:house|flat|apartment|home|room))?|knocking on my window|banging"
    r" on my window|tapping on my window|following me|been following me|stalking me)\b"
    r"(?! (?:on|in) (?:the )?(?:game|insta|instagram|twitter|tiktok|twitch|socials?)\b)",
    r"\b(?:i'?m|i am|im|think i'?m|pretty sure i'?m) being (?:followed|stalked)\b",
)
_PLACE = (r"(?:my|our|the) (?:house|flat|apartment|home|door|front door|back door|window|"
          r"bedroom window|room|work|office|school|uni|car)")
_OUTSIDE: tuple[str, ...] = (
    r"\b(?:someone|somebody|a (?:man|guy|stranger|person|car)|(?:two |some )?(?:men|guys|"
    r"people))(?:'s| is| are| has been| have been| keeps?)? (?:standing |sitting |parked )?"
    r"(?:outside|at|by|in front of|looking (?:in|into|through)) " + _PLACE + r"\b",
    r"\b(?:someone|somebody|" + _WHO + r")(?:'s| is| are| keeps?| kept)? (?:banging|pounding|"
    r"hammering|kicking|trying) (?:on |at )?(?:my |the )?(?:door|window)s?\b",
    r"\b(?:someone|somebody|" + _WHO + r") (?:keeps|kept|has been|is|'s) (?:turning|showing)"
    r" up (?:at|outside) " + _PLACE + r"\b",
)
_FEAR = re.compile(r"\b(?:scared|terrified|frightened|freaking out|afraid|panicking|hiding|"
                   r"home alone|on my own|alone|help|[0-4] ?am|middle of the night|won'?t"
                   r" leave|won'?t go away|for (?:an|over an|two|three) hours?)\b",
                   re.IGNORECASE)
# A joke marker right after, or a denial right before: "she slapped me lol", "i don't
# think someone is following me".
_JOKE = re.compile(r"^\W*(?:lol|lmao|haha+|jk|😂|🤣)", re.IGNORECASE)
_DENIED = re.compile(r"\b(?:(?:do|does|did|wo|would|has|had)n'?t|not|never|no) (?:\w+ )?$",
                     re.IGNORECASE)
_KINDS = tuple((kind, re.compile("|".join(patterns), re.IGNORECASE)) for kind, patterns in (
    ("abuse", _ABUSE), ("threat", _THREAT), ("intruder", _INTRUDER)))
_OUTSIDE_RE = re.compile("|".join(_OUTSIDE), re.IGNORECASE)


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("’", "'").replace("‘", "'")).strip()


def _meant(plain: str, match: re.Match[str]) -> bool:
    return not (_JOKE.match(plain[match.end():])
                or _DENIED.search(plain[max(0, match.start() - 24):match.start()]))


def in_danger(text: str) -> str | None:
    """What danger the person says they are in: "abuse" (someone hurts them), "threat"
    (someone threatens them, or they fear being hurt), "intruder" (someone breaking in,
    outside the home at night, following them); None when none is named."""
    plain = _plain(text)
    for kind, pattern in _KINDS:
        if any(_meant(plain, m) for m in pattern.finditer(plain)):
            return kind
    if _FEAR.search(plain) and any(_meant(plain, m) for m in _OUTSIDE_RE.finditer(plain)):
        return "intruder"
    return None


# The turn after the danger reply answers "Are you safe right now?".
_SAFE = re.compile(r"^(?:yes|yeah|yep|yup|ya|i think so|for now|i'?m safe|i am safe|safe now|"
                   r"i'?m ok(?:ay)?|i am ok(?:ay)?|i'?m fine|i am fine|i'?m alright)\b"
                   r"|\b(?:(?:they|he|she)(?:'ve|'s| have| has)? (?:gone|left)|i'?m safe|i am "
                   r"safe|at my (?:friend|mum|mom|sister|brother|nan)'?s|police (?:are|is) here"
                   r"|locked (?:the|my) (?:\w+ )?door)\b", re.IGNORECASE)
_UNSAFE = re.compile(r"^(?:no|nope|nah|not really|not safe|i'?m not|i don'?t know|idk|help)\b"
                     r"|\b(?:(?:he|she|they)(?:'s|'re| is| are) still|still (?:here|there|"
                     r"outside|banging|knocking|following)|not safe|coming back|(?:he|she|"
                     r"they)(?:'s|'re| is| are) (?:back|home|here))\b", re.IGNORECASE)


def read_safety_answer(text: str) -> str | None:
    """"safe", "unsafe" or None (unclear) for the answer to "Are you safe right now?";
    danger still named ("he's still outside") is unsafe, whatever else is said."""
    plain = _plain(text)
    if _UNSAFE.search(plain):
        return "unsafe"
    return "safe" if _SAFE.search(plain) else None


DANGER_LINES_FILE = "danger_lines.npz"


class DangerLines:
    """Embedded danger lines (label 1) and look-alikes (0), and the margin threshold."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, threshold: float,
                 k: int = K_NEAREST) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.uint8)
        self.threshold = float(threshold)
        self.k = k
        if min(int(self.labels.sum()), int((self.labels == 0).sum())) < k:
            raise ValueError(f"a danger bank needs at least {k} lines of each kind")

    @classmethod
    def load(cls, path: Path) -> DangerLines:
        data = np.load(path)
        return cls(data["vectors"].astype(np.float32) / SCALE, data["labels"],
                   float(data["threshold"]), int(data["k"]))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, vectors=quantised(self.vectors), labels=self.labels,
                            threshold=np.float64(self.threshold), k=np.int64(self.k))

    def _nearest(self, vectors: np.ndarray, bank: np.ndarray) -> np.ndarray:
        sims = vectors @ bank.T
        return np.partition(sims, sims.shape[1] - self.k, axis=1)[:, -self.k:].mean(axis=1)

    def margins(self, vectors: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
        """Per unit vector: mean cosine to its K nearest danger lines minus that to its K
        nearest other lines (the look-alikes and `others`, e.g. the crisis known lines)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        negatives = self.vectors[self.labels == 0]
        if others is not None:
            negatives = np.concatenate([negatives, others])
        return (self._nearest(vectors, self.vectors[self.labels == 1])
                - self._nearest(vectors, negatives))
