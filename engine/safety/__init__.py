"""Safety: crisis recognition and replies, prompt-injection defences, sticker checks.

    crisis.py          the crisis classifier (MiniLM + LoRA + a head, crisis_model/;
                       trained and evaluated by training/safety)
    check_in.py        the check-in question's state and how its answer is read
    resources.py       the written crisis reply, per language and country (resources.json)
    injection.py       inert control tokens in, no recited system prompt or links out
    sticker_check.py   which stickers may be sent; the diffusers safety checker
    policy.py          the responder's safety step, and building it from settings
"""
