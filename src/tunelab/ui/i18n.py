"""English and Chinese strings for every label, hint and message on the board.

Each tab registers its strings at import time with keys prefixed by the tab name
(``"train.start"``); :func:`t` looks one up for a language and fills ``{placeholders}``.
"""

from __future__ import annotations

LANGS = ("en", "zh")
_STRINGS: dict[str, tuple[str, str]] = {}


def register(strings: dict[str, tuple[str, str]]) -> None:
    """Add ``key -> (english, chinese)`` pairs; a key registered twice must not change."""
    for key, pair in strings.items():
        if len(pair) != 2 or not all(isinstance(s, str) and s for s in pair):
            raise ValueError(f"i18n key {key!r} needs a non-empty (en, zh) pair, got {pair!r}")
        old = _STRINGS.get(key)
        if old is not None and old != tuple(pair):
            raise ValueError(f"i18n key {key!r} registered twice with different text")
        _STRINGS[key] = tuple(pair)


def t(key: str, lang: str = "en", **values: object) -> str:
    """The string for ``key`` in ``lang`` ("en" or "zh"), with ``{name}`` fields filled in."""
    pair = _STRINGS.get(key)
    if pair is None:
        raise KeyError(f"no i18n string registered for {key!r}")
    text = pair[1] if lang == "zh" else pair[0]
    return text.format(**values) if values else text


def keys() -> list[str]:
    """Every registered key (tests check each has both languages)."""
    return sorted(_STRINGS)


def both(key: str) -> tuple[str, str]:
    """The (en, zh) pair of ``key``."""
    return _STRINGS[key]
