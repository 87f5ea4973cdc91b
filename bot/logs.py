"""Logging set-up and the one place log messages that carry secrets are scrubbed.

Usage::

    configure_logging("INFO")
"""

from __future__ import annotations

import logging
import os
import re
import sys

# Slack tokens (xoxb-, xoxp-, xapp-, ...) and anything configured as a secret never reach a log.
_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL")


def scrub(text: str) -> str:
    """Replace tokens and configured secret values with a placeholder."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}-[redacted]", text)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 8:
            text = text.replace(value, f"[{name} redacted]")
    return text


class ScrubbingFilter(logging.Filter):
    """Scrubs the fully formatted message, so secrets in arguments are caught too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level``, scrubbing secrets; safe to call more than once."""
    root = logging.getLogger()
    if not any(isinstance(f, ScrubbingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(ScrubbingFilter())
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Libraries that narrate their own start-up at INFO/DEBUG.
    for noisy in ("faiss", "faiss.loader", "sentence_transformers", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
