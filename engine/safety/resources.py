"""The crisis reply: a calm, written template (never the small LLM) that points to help.

Resources are configurable per country and the templates per language, in a JSON file
(`engine/safety/resources.json` by default, or STICKERBOT_SAFETY_RESOURCES_PATH):

    {"countries": {"default": {...}, "US": {"self_harm": [...], "harm_others": [...],
                                         "danger": [...], "emergency": "911"}, ...},
     "templates": {"en": {"self_harm": "... {resources} ... ({emergency}) ...",
                          "harm_others": "...", "danger": "..."}, ...}}

"danger" (someone hurts, threatens or stalks the person) may be left out: the bundled
file's English words and default resources stand in.

A resource or emergency entry is a string, or an object of strings by language. A
country that is not listed gets "default" (an international directory and "your local
emergency number"); a language that is not listed gets English.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_RESOURCES = Path(__file__).with_name("resources.json")
DEFAULT_LANGUAGE = "en"
KINDS = ("self_harm", "harm_others")
# The person is hurt, threatened or stalked by someone (engine.safety.danger). Optional in
# a resources file: a country without its own list gets the default country's, and a
# language without the template gets English.
DANGER = "danger"
# What follows the danger reply, by the answer to its "are you safe right now?".
FOLLOW_UPS = ("danger_safe", "danger_unsafe", "danger_unclear")
OPTIONAL_KINDS = (DANGER, *FOLLOW_UPS)  # a file may leave these out
# The check-in question, by whom the risk is about ("self" or "others").
CHECK_IN_KINDS = {"self": "check_in_self", "others": "check_in_others"}


def _text(entry: Any, language: str) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return str(entry.get(language) or entry.get(DEFAULT_LANGUAGE)
                   or next(iter(entry.values()), ""))
    raise ValueError(f"a resource must be a string or an object by language: {entry!r}")


def normalise_language(code: str | None) -> str:
    """'de-AT', 'pt_BR', 'EN' -> 'de', 'pt', 'en'."""
    return (code or "").replace("_", "-").split("-")[0].strip().lower()


@dataclass
class CrisisResources:
    countries: dict[str, dict[str, Any]]
    templates: dict[str, dict[str, str]]

    @classmethod
    def load(cls, path: Path | str | None = None) -> CrisisResources:
        path = Path(path) if path else DEFAULT_RESOURCES
        if not path.is_file():
            raise FileNotFoundError(f"crisis resources file {path} not found "
                                    "(setting STICKERBOT_SAFETY_RESOURCES_PATH)")
        data = json.loads(path.read_text(encoding="utf-8"))
        resources = cls({k.upper() if k != "default" else k: v
                         for k, v in data.get("countries", {}).items()},
                        {normalise_language(k): v for k, v in data.get("templates", {}).items()})
        english, default = resources.templates.get(DEFAULT_LANGUAGE), resources.countries.get(
            "default")
        if english is not None and default is not None and not all(
                english.get(kind) for kind in OPTIONAL_KINDS):
            # A file written before the danger reply existed: the bundled one's words.
            bundled = json.loads(DEFAULT_RESOURCES.read_text(encoding="utf-8"))
            for kind in OPTIONAL_KINDS:
                english.setdefault(kind, bundled["templates"][DEFAULT_LANGUAGE][kind])
            default.setdefault(DANGER, bundled["countries"]["default"][DANGER])
        resources.validate(path)
        return resources

    def validate(self, source: Path | str = "resources") -> None:
        if "default" not in self.countries:
            raise ValueError(f"{source}: countries needs a 'default' entry")
        if DEFAULT_LANGUAGE not in self.templates:
            raise ValueError(f"{source}: templates needs '{DEFAULT_LANGUAGE}'")
        for lang, kinds in self.templates.items():
            for kind in (*KINDS, *OPTIONAL_KINDS):
                template = kinds.get(kind, "" if kind in KINDS else None)
                if template is not None and ("{resources}" not in template
                                             or "{emergency}" not in template):
                    raise ValueError(f"{source}: template {lang}/{kind} needs {{resources}} "
                                     "and {emergency}")
        for kind in CHECK_IN_KINDS.values():
            if not self.templates[DEFAULT_LANGUAGE].get(kind):
                raise ValueError(f"{source}: templates/{DEFAULT_LANGUAGE} needs {kind}")
        for country, entry in self.countries.items():
            for kind in KINDS:
                if not entry.get(kind):
                    raise ValueError(f"{source}: country {country} lacks {kind} resources")
            if not entry.get("emergency"):
                raise ValueError(f"{source}: country {country} lacks an emergency number")

    def reply(self, kind: str, language: str | None = None, country: str | None = None) -> str:
        """The crisis reply for `kind` ("self_harm", "harm_others" or "danger")."""
        if kind not in (*KINDS, *OPTIONAL_KINDS):
            raise ValueError(f"unknown crisis kind {kind!r}")
        lang = normalise_language(language)
        if not self.templates.get(lang, {}).get(kind):
            lang = DEFAULT_LANGUAGE
        entry = self.countries.get((country or "").upper()) or self.countries["default"]
        listed_kind = DANGER if kind in FOLLOW_UPS else kind  # follow-ups name its help
        resources = (entry.get(listed_kind) or self.countries["default"].get(listed_kind)
                     or [])
        listed = "; ".join(_text(r, lang) for r in resources)
        emergency = _text(entry["emergency"], lang)
        return self.templates[lang][kind].format(resources=listed, emergency=emergency)

    def check_in(self, target: str, language: str | None = None) -> str:
        """The written question that asks whether they are thinking of hurting
        themselves ("self") or someone else ("others")."""
        kind = CHECK_IN_KINDS[target]
        lang = normalise_language(language)
        templates = self.templates.get(lang, {})
        return templates.get(kind) or self.templates[DEFAULT_LANGUAGE][kind]
