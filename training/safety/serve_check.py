"""The safety evaluation end to end: the evaluation conversations sent to a running
`stickerbot serve` through its web chat, as a person would send them.

Each conversation gets its own web-chat identity (a fresh cookie from the page) and its
turns go one after another, so the bot's own replies, check-ins included, are the
context the next turn is read in. A reply is a crisis reply when the server labels it
so (`reply.safety`), and a check-in when the label starts with "check_in". Ordinary
conversations are sampled (each ordinary turn costs a full LLM reply), and so can the
risk lines be, per level; each is sent after the user turns of its written context.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path

import httpx

from training.safety.data import ORDINARY_EVAL_PATHS, RISK_EVAL_PATHS

TIMEOUT_S = 180.0
SEED = 0


class WebChat:
    """One person in the web chat of a running server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=TIMEOUT_S)
        self.client.get("/").raise_for_status()  # the page sets the identity cookie

    def say(self, text: str) -> dict:
        for _ in range(20):
            response = self.client.post("/api/chat/messages", json={"text": text},
                                        headers={"Origin": self.base_url})
            if response.status_code in (429, 503):  # flood limits: wait as told
                time.sleep(float(response.headers.get("Retry-After", 2)))
                continue
            response.raise_for_status()
            return response.json()["reply"]
        raise RuntimeError("the server kept refusing (429/503) after 20 tries")

    def close(self) -> None:
        self.client.close()


def _lines(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def action_of(reply: dict) -> str:
    """reply | check_in | crisis | danger, from the bot turn's safety label."""
    label = reply.get("safety") or ""
    if label.startswith("check_in"):
        return "check_in"
    return label if label == "danger" else "crisis" if label else "reply"


def run_through_serve(base_url: str, ordinary_sample: int, out: Path,
                      risk_per_level: int | None = None) -> dict:
    rng = random.Random(SEED)
    conversations = [c for path in ORDINARY_EVAL_PATHS for c in _lines(path)]
    rng.shuffle(conversations)
    ordinary: dict[str, list[str]] = defaultdict(list)
    for conv in conversations[:ordinary_sample]:
        chat = WebChat(base_url)
        for turn in conv["turns"]:
            if turn["role"] != "user" or not (turn.get("text") or "").strip():
                continue  # stickers from a platform cannot be sent through the web chat
            kind = "hard negatives" if turn.get("hard") else "everyday"
            ordinary[kind].append(action_of(chat.say(turn["text"])))
        chat.close()
    risk: dict[str, list[str]] = defaultdict(list)
    items = [item for path in RISK_EVAL_PATHS for item in _lines(path)]
    rng.shuffle(items)
    for item in items:
        if risk_per_level is not None and len(risk[item["level"]]) >= risk_per_level:
            continue
        chat = WebChat(base_url)
        for turn in item.get("context") or []:
            if turn["role"] == "user":
                chat.say(turn["text"])
        risk[item["level"]].append(action_of(chat.say(item["text"])))
        chat.close()
    report = {
        # On an ordinary turn the danger reply is a false alarm as much as the crisis reply.
        "ordinary": {kind: {"n": len(got),
                            "crisis": (got.count("crisis") + got.count("danger")) / len(got),
                            "check_in": got.count("check_in") / len(got)}
                     for kind, got in ordinary.items()},
        "risk": {level: {"n": len(got), "crisis reply": got.count("crisis") / len(got),
                         "crisis or check-in": (got.count("crisis") + got.count("check_in"))
                         / len(got)}
                 for level, got in sorted(risk.items())},
    }
    print(f"\nThrough {base_url} ({ordinary_sample} ordinary conversations sampled, "
          f"{risk_per_level or 'all'} risk lines per level):")
    for kind, r in report["ordinary"].items():
        print(f"  {kind}: {r['n']} turns, crisis replies {r['crisis']:.2%}, "
              f"check-ins {r['check_in']:.2%}")
    for level, r in report["risk"].items():
        print(f"  {level}: {r['n']} turns, crisis reply {r['crisis reply']:.3f}, "
              f"crisis or check-in {r['crisis or check-in']:.3f}")
    (out / "safety-serve.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
