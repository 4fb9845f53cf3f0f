"""Message catalogues of the console and the language choice.

The core catalogue is ``i18n/<lang>.json``; each console area may add its own
``i18n/<area>.<lang>.json`` (for example ``plant.zh.json``), merged in name order, so
areas keep their strings next to each other without editing one shared file.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "ib_lang"


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Return the messages of ``lang`` (English for an unknown language).

    Missing keys fall back to English, so a partly translated catalogue still renders.
    """
    english = _load(DEFAULT_LANGUAGE)
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return english
    return {**english, **_load(lang)}


def _load(lang: str) -> dict[str, str]:
    folder = resources.files("ironbridge.web").joinpath("i18n")
    areas = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name.endswith(f".{lang}.json") and entry.name != f"{lang}.json"
    )
    names = [f"{lang}.json", *areas]
    messages: dict[str, str] = {}
    for name in names:
        data = json.loads(folder.joinpath(name).read_text("utf-8"))
        messages.update({str(k): str(v) for k, v in data.items()})
    return messages


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """Pick the language: the cookie if valid, else the first supported Accept-Language."""
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LANG_COOKIE", "catalogue", "choose_language"]
