"""The explicit high-risk phrase layer: risk named plainly, however it is typed, and the
idioms, films and keychains that borrow its words."""

from __future__ import annotations

import pytest

from engine.safety.phrases import explicit_risk


@pytest.mark.parametrize("text, label", [
    ("I want to kill myself", "self_harm"),
    # typed in a hurry, or the way platforms' filters taught people to write it
    ("i think about sucide like all the time now", "self_harm"),
    ("gonna unalive myself tonight", "self_harm"),
    ("the unalive thoughts are so loud today", "self_harm"),
    ("been having suicidal thoughts again", "self_harm"),
    ("im so suicdal rn", "self_harm"),
    ("i hurt my self again last night", "self_harm"),
    # method and preparation, said plainly
    ("i tied a noose in the garage", "self_harm"),
    ("i keep thinking about jumping off the bridge by my office", "self_harm"),
    ("i want to step in front of a train", "self_harm"),
    ("I'm going to poison him", "harm_others"),
    ("im going to kill him on saturday when he gets home", "harm_others"),
    ("i wrote goodbye letters to my kids. they will find them", "self_harm"),
    ("i wish i could sleep and never wake up", "passive"),
    # shorthand as often about lost keys as about a plan: asked about, not assumed
    ("kms", "passive"),
    # a way to die looked up, no plan said: at least asked about
    ("been reading about how many paracetamol it takes. just curious", "method"),
    ("how many sleeping pills would it take to not wake up", "method"),
    ("whats the lethal dose of my antidepressants", "method"),
    ("what is the most painless way to die", "method"),
    ("how high does a bridge have to be to die", "method"),
    # a weapon and the people it is meant for
    ("im bringing the rifle in at 9 and shooting the team", "harm_others"),
    ("got my dads gun. tomorrow i'm killing everyone in that office", "harm_others"),
    ("the gun is loaded, i'm going to shoot everyone at the party", "harm_others"),
    ("whats the fatal dose of tylenol", "method"),
])
def test_risk_named_plainly_is_found(text: str, label: str) -> None:
    assert explicit_risk(text) == label


@pytest.mark.parametrize("text", [
    "how many paracetamol can i take for a headache",
    "how many ibuprofen does it take to kick in, mine's not working",
    "we had to learn the lethal dose of paracetamol for the pharmacology exam",
    "what's the lethal dose of coffee because i'm on my fifth",
    "quickest way to the station from here?",
    "bringing my camera and the rifle props, we're shooting the team photo at 9",
    "water gun fight! shooting everyone at the bbq",
    "decided to end it with him. it's been over for ages, we both knew",
    "how many sleeping pills does it take to actually work on a long flight",
    "how long does it take to die your hair at home",
    "whats the quickest way to die in dark souls lol",
    "reading about the lethal dose of nutmeg for a podcast",
    "my knife skills are killing it in the kitchen, the team loved dinner",
    "this homework is killing me",
    "I could kill myself for forgetting her birthday",
    "cut myself shaving again lol",
    "a film about suicidal thoughts in the book club tonight",
    "watched a documentary on suicide prevention",
    "bought a noose knot keychain as a joke for my goth friend",
    "we jumped off the cliff into the lake, so fun",
    "I bought a rope for climbing",
    "ugh my self esteem after that meeting",
    "no, I don't want to die, I just want this week to end",
    "wrote my goodbye letter to the team, last day is friday",
    "i wrote a goodbye letter to my mum and read it at her funeral",
    "we're going to kill them in the final",
])
def test_idioms_and_stories_are_not_risk(text: str) -> None:
    assert explicit_risk(text) is None
