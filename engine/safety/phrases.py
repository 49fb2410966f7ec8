"""Explicit high-risk phrases: the layer beside the learned classifier.

A small model can be unsure about "I just swallowed all my antidepressants" while no
person would be. These patterns name risk in the first person and plainly (killing
oneself, ending one's life, an overdose taken, a suicide note, an attack planned on a
school), and the idioms that borrow the same words ("I could kill myself for
forgetting", "cut myself shaving", "dying to see it") are written out of them. A hit
raises the classifier's verdict (engine.safety.crisis) to the crisis reply; a plain
wish to be dead ("I just want to sleep and never wake up") gets the check-in, as the
graded answer asks: the next turn decides.
"""

from __future__ import annotations

import re

_I = r"(?:i|i'?m|i am|i'?ve|i have|i'?ll|i will|i'?d|im|ive|ill)"
_SELF: tuple[str, ...] = (
    # killing oneself, ending one's life, suicide in the first person
    r"\b(?:kill|killing|hang|hanging|shoot|shooting|drown|drowning|off|offing)"
    r" myself\b(?! (?:laughing|with laughter|for|if|when|over|because of (?:the|this|that)"
    r" (?:song|show|game)))",
    r"\b(?:end|ending|take|taking|took) my (?:own )?life\b",
    r"\b(?:i'?m|i am|im|feel(?:ing)?|felt|been|getting|so|really|very) suicidal\b",
    r"\b(?:think(?:ing)?|thought|thoughts) (?:about|of) (?:suicide|killing myself|ending my"
    r" life)\b",
    r"\b(?:commit|committing|attempt(?:ed)?|tried) suicide\b",
    r"\b(?:wrote|writing|written|write|left|leaving) (?:a |my |the )?(?:suicide|goodbye)"
    r" (?:note|letter)s?\b(?! (?:to|for) (?:the |my |our )?(?:team|colleagues|coworkers|"
    r"co-workers|class|students|club|office|staff|followers|server)\b)(?![^.!?]{0,40}funeral)",
    r"\bsuicide (?:note|letter|plan|attempt)s?\b",
    r"\b(?:want|wanna|plan(?:ning)?|ready|decided) to (?:die|end it(?: all)?|end"
    r" everything|not (?:be here|exist|wake up))\b(?! (?:of|from|laughing|when|if|lol|with))",
    r"\b(?:should|could) (?:just )?die\b(?! (?:of|from|laughing|happy|for))",
    r"\bbetter off (?:dead|without me)\b",
    r"\b(?:don'?t|do not|dont) want to (?:live|be alive|exist|wake up)\b",
    r"\bno (?:reason|point) (?:to|in) (?:live|living|being alive|go(?:ing)? on)\b",
    # self-injury, not the kitchen or the razor
    r"\b(?:cut|cutting|burn|burning|harm|harming|hurt|hurting) myself\b"
    r"(?! (?:shaving|cooking|chopping|on|with the|by accident|accidentally|at|in the"
    r" kitchen|slicing|opening|slightly|a little|a bit|by mistake|badly at))",
    r"\b(?:i|i'?ve been|been|started|starting|i'?m) self[- ]harm(?:ing)?\b"
    r"|\bmy self[- ]harm(?:ing)?\b(?! (?:is|was) (?:over|behind|in the past))",
    r"\bslit (?:my )?wrists?\b",
    # an overdose taken or planned
    r"\b" + _I + r" (?:just |already )?(?:took|taken|swallowed|downed|overdosed|od'?d)\b"
    r"[^.!?]{0,40}\b(?:all|whole|entire|bottle|box|packet|every|lot of|bunch of|handful)"
    r"\b[^.!?]{0,30}\b(?:pills|tablets|meds|medication|antidepressants|paracetamol|"
    r"tylenol|sleeping pills)\b",
    r"\b(?:going|gonna|want|wanna|plan(?:ning)?) to (?:overdose|od)\b",
    r"\b(?:stockpil(?:e|ed|ing)|saving up|saved up|hoard(?:ed|ing)) (?:my |the )?"
    r"(?:pills|tablets|meds)\b",
    # thoughts named in the first person, the rope, the bridge, the train
    r"\b(?:having|have|had|get|getting|got|been having|my|these|the) (?:\w+ )?suicidal"
    r" (?:thoughts|feelings|urges|ideation)\b(?! (?:in|of) (?:the|this|that|a) (?:film|"
    r"movie|book|show|character|song))",
    r"\b(?:tied|tying|made|making|bought|buying|got|hung|hanging|have) (?:a |the |my )?"
    r"noose\b(?! (?:knot|keychain|necklace|earring|emoji|scene|joke))",
    r"\b(?:going|gonna|want|wanna|plan(?:ning)?|ready|thinking about|think about|"
    r"thought about|decided) (?:to )?(?:jump(?:ing)?|step(?:ping)?|throw(?:ing)? myself)"
    r" (?:off|from|in front of|onto) (?:a |the |my )?(?:\w+ )?(?:bridge|roof|rooftop|"
    r"building|balcony|train|tracks|motorway|highway|bus|car|lorry|truck)\b",
    r"\b(?:crash|drive|driving|crashing) my car into\b",
)
_OTHERS: tuple[str, ...] = (
    r"\b(?:shoot|shooting|shoot up|bomb|bombing|attack|attacking)"
    r" (?:up )?(?:the |my |our |a )?(?:school|class|office|workplace|work|church|mosque|"
    r"synagogue|mall|concert)\b",
    r"\b(?:bring|bringing|take|taking)(?: a| my| dad'?s)? (?:gun|rifle|knife|bomb)"
    r" (?:to|into) (?:school|class|work|the office|church)\b",
    r"\b(?:going|gonna|plan(?:ning)?|want|wanna) to (?:kill|murder|stab|shoot|strangle|"
    r"poison|run over)"
    r" (?:him|her|them|my (?:wife|husband|boss|dad|mom|mum|mother|father|brother|sister|ex|"
    r"partner|boyfriend|girlfriend|roommate|neighbou?r|teacher))\b"
    r"(?! (?:if|when|lol|haha|for (?:eating|taking|using|being late)|(?:on|at|in) (?:the )?"
    r"(?:game|match|final|derby|pitch|court|race|tournament|league|round)\b))",
    # a weapon and people to use it on, close together; not a toy, a photo shoot or a match
    r"(?<!water )(?<!nerf )(?<!toy )(?<!laser )(?<!glue )(?<!squirt )(?<!paintball )"
    r"(?<!airsoft )(?<!bubble )(?<!butter )\b(?:gun|rifle|shotgun|pistol|handgun|ar-?15|"
    r"knife|machete|ammo|bullets)\b.{0,60}\b(?:shoot|shooting|stab|stabbing|kill|killing|"
    r"gun down) (?:up )?(?:the |my |our |all (?:the |of )?|every )?(?:team|staff|class|"
    r"coworkers|co-workers|colleagues|teachers|students|people|them all|everyone|everybody|"
    r"all of them|the lot of them)\b(?!'s| (?:photo|picture|pic|video|shoot|promo|headshots?|"
    r"portraits?|quiz|game|match|round|at (?:pool|darts|cards|chess|fifa|cod|the (?:game|"
    r"quiz))))",
)
# A plain wish to be dead, no more: the bot asks (the check-in) rather than assume.
_PASSIVE: tuple[str, ...] = (
    r"\b(?:want|wanna|wish|hope|hoping|rather|like)\b[^.!?]{0,20}\bsleep and (?:never|not)"
    r" wake up\b(?! (?:for|until|till|before|on))",
    r"\bwish(?:ing)? (?:i was|i were|i'?d|i had|i could be) (?:dead|never (?:been )?born|not"
    r" (?:been )?born|gone|not here)\b",
    r"\b(?:wouldn'?t|would not) (?:mind|care) if i (?:died|didn'?t wake up|was dead|never"
    r" woke up|got hit)\b",
    # "kill myself" in the shorthand teenagers also use for a lost set of keys: asked about
    r"\bkms\b",
)
# A way to die looked up, with no plan said: at least the check-in (the model may still
# find a crisis). The question must end there ("how many would it take."), so a dose for a
# headache, a pharmacology exam or a game's quickest death is not one.
_ENDS = r"(?=\s*(?:[.!?,;]|$|just\b|tho\b|though\b|is\b|for me\b|lol\b))"

_METHOD: tuple[str, ...] = (
    r"\bhow (?:many|much) (?:\w+ ){0,3}(?:pills|tablets|paracetamol|tylenol|ibuprofen|"
    r"aspirin|insulin|meds|sleeping pills)\b[^.!?]{0,30}\b(?:(?:would it|does it|it would|it)"
    r" takes?|(?:is|are) (?:fatal|lethal|deadly|too many to survive)|to overdose|to od|to die|"
    r"to kill (?:you|yourself|me|someone)|to not wake up)" + _ENDS,
    r"\b(?:what'?s|what is|how much is|looking up|looked up|look up|googl\w*|research\w*|"
    r"reading about|read about) (?:the |a )?(?:lethal|fatal|deadly) (?:dose|amount)(?: of"
    r" (?:my |these |those |the |your |his |her )?(?:meds|medication|medicine|pills|tablets|"
    r"antidepressants|insulin|paracetamol|tylenol|acetaminophen|ibuprofen|aspirin|lithium|"
    r"sleeping pills|\w+ pills))?" + _ENDS,
    r"\b(?:painless(?:est)?|quick(?:est)?|easiest|surest|least painful) ways? to (?:die|kill"
    r" myself|end my life|not wake up)" + _ENDS,
    r"\bhow (?:high|tall)\b[^.!?]{0,40}\b(?:to die|to kill you|(?:would|will) kill you|be"
    r" fatal)(?=\s*(?:[.!?,]|$|from|if|when))",
    r"\bhow long (?:does it|would it|it) takes? to (?:die|bleed out|suffocate|drown|overdose)"
    r"(?=\s*(?:[.!?,]|$|from|of|if|when|in (?:a|the) (?:car|garage|bath)))",
)
_SELF_RE = re.compile("|".join(_SELF), re.IGNORECASE)
_PASSIVE_RE = re.compile("|".join(_PASSIVE), re.IGNORECASE)
_OTHERS_RE = re.compile("|".join(_OTHERS), re.IGNORECASE)
_METHOD_RE = re.compile("|".join(_METHOD), re.IGNORECASE)
# A joke marker right after the words: "I'm gonna kill him lol".
_JOKE = re.compile(r"^\W*(?:lol|lmao|haha+|jk|😂|🤣|💀)", re.IGNORECASE)
# A denial right before them: "no I don't want to die", "I never thought of suicide".
_DENIED = re.compile(r"\b(?:(?:do|does|did|ca|wo|would|could|should|is|was|are|have|has)"
                     r"n'?t|not|never|no) $", re.IGNORECASE)


# How people type the words when they are not careful, or when platforms filter them:
# read as the plain word before the patterns run.
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), plain) for pattern, plain in (
        (r"\b(?:sucide|suicde|suiside|suicid|sucicide|suicie|sewer ?slide|s\*\*cide|"
         r"su\*cide|s\*icide)\b", "suicide"),
        (r"\b(?:sucidal|suicdal|suicidial|sucicidal|suisidal)\b", "suicidal"),
        (r"\bunalive(?:d|ing)? myself\b", "kill myself"),
        (r"\bunalive thoughts\b", "suicidal thoughts"),
        (r"\bk\*ll myself\b|\bkil myself\b|\bkill my self\b", "kill myself"),
        (r"\bmy self\b", "myself"),
    ))


def _plain(text: str) -> str:
    plain = re.sub(r"\s+", " ", text.replace("’", "'").replace("‘", "'")).strip()
    for pattern, word in _SPELLINGS:
        plain = pattern.sub(word, plain)
    return plain


def explicit_risk(text: str) -> str | None:
    """"self_harm" or "harm_others" when the text names the risk plainly, "passive" for a
    plain wish to be dead, "method" for a way to die looked up, else None."""
    plain = _plain(text)
    for pattern, label in ((_SELF_RE, "self_harm"), (_OTHERS_RE, "harm_others"),
                           (_PASSIVE_RE, "passive"), (_METHOD_RE, "method")):
        for match in pattern.finditer(plain):
            if not (_JOKE.match(plain[match.end():])
                    or _DENIED.search(plain[max(0, match.start() - 24):match.start()])):
                return label
    return None
