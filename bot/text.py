"""Input hygiene for questions: Slack markup, control characters and size.

Usage::

    clean_question("<@U123> when do   updates stop?\\x00")  # -> "when do updates stop?"
"""

from __future__ import annotations

import re
import unicodedata

# The model reads at most 256 word pieces; anything past a few thousand characters is noise that
# would only slow the lexical scorer down.
MAX_QUESTION_CHARS = 2000

_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SPECIAL_MENTION = re.compile(r"<!(?:channel|here|everyone|subteam\^[A-Z0-9]+)(?:\|[^>]*)?>")
_OTHER_SPECIAL = re.compile(r"<![^>]*>")  # dates and anything else Slack may add
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_WHITESPACE = re.compile(r"\s+")


def _strip_controls(text: str) -> str:
    # Cc (controls) and Cf (format: zero-width, bidi overrides) become spaces; keep everything else.
    return "".join(" " if unicodedata.category(ch) in {"Cc", "Cf", "Cs"} else ch for ch in text)


def clean_question(text: str | None) -> str:
    """Strip Slack mentions and markup, control characters and excess whitespace; cap the length."""
    if not text:
        return ""
    text = text[: MAX_QUESTION_CHARS * 4]
    text = _USER_MENTION.sub(" ", text)
    text = _SPECIAL_MENTION.sub(" ", text)
    text = _OTHER_SPECIAL.sub(" ", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1)}" if m.group(1) else " ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    # Slack escapes these three in message text.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = _strip_controls(text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text[:MAX_QUESTION_CHARS].strip()


def slack_to_plain(text: str | None) -> str:
    """A Slack message's text as plain text, for keeping and quoting what a person wrote: links
    become "label (url)" (a curator wants the URL), channels "#name", mentions of people and
    groups are dropped, Slack's escapes are undone, controls and runs of whitespace become one
    space. Not capped: the caller decides how much to keep.

    Usage: ``slack_to_plain("see <https://x.gov/a|the rule> <@U1>")`` -> ``"see the rule (https://x.gov/a)"``
    """
    if not text:
        return ""
    text = _USER_MENTION.sub(" ", text)
    text = _SPECIAL_MENTION.sub(" ", text)
    text = _OTHER_SPECIAL.sub(" ", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1)}" if m.group(1) else " ", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return _WHITESPACE.sub(" ", _strip_controls(text)).strip()
