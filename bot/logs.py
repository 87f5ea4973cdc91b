"""Logging set-up and the one place log messages that carry secrets are scrubbed.

Two formats: ``text`` (one readable line per record, the default) and ``json`` (one JSON object
per line with ``time``, ``level``, ``logger``, ``message`` and whatever was passed in ``extra=``,
such as ``event_id``), chosen by ``LOG_FORMAT``. Both are scrubbed of Slack tokens and of the
values of the secret environment variables.

Usage::

    configure_logging("INFO", json=True)
    logging.getLogger("bot.slack").info("answered", extra={"event_id": "Ev123"})
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# Slack tokens (xoxb-, xoxp-, xapp-, ...) and anything configured as a secret never reach a log.
_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# Secrets given to configure_logging: settings read from .env are not in os.environ.
_configured_secrets: dict[str, str] = {}


def scrub(text: str) -> str:
    """Replace tokens and configured secret values with a placeholder."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}-[redacted]", text)
    secrets = {name: os.environ.get(name) for name in SECRET_VARIABLES}
    for name, value in (*secrets.items(), *_configured_secrets.items()):
        if value and len(value) >= 8:
            text = text.replace(value, f"[{name} redacted]")
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    return value


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


class TextFormatter(logging.Formatter):
    """The readable line, with ``[event_id=...]`` appended when the record carries one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        event_id = getattr(record, "event_id", None)
        if event_id:
            line = f"{line} [event_id={event_id}]"
        # The filter cleaned the message; this catches what it cannot reach (extras, tracebacks
        # formatted here because the record was never filtered, e.g. on another handler).
        return scrub(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn adds a copy of each message with terminal colour codes: not for a log store.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        created = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return created.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # python-json-logger formats tracebacks itself (not from the filtered exc_text) and
        # copies every extra as is: scrub each value before it is serialised.
        return {key: _scrub_value(value) for key, value in log_data.items()}


def _formatter(json: bool) -> logging.Formatter:
    return JsonLineFormatter() if json else TextFormatter()


def configure_logging(
    level: str = "INFO", json: bool | None = None, *, secrets: Mapping[str, str] | None = None
) -> None:
    """Log to stderr at ``level``, scrubbing secrets; safe to call more than once.

    ``json=True`` writes one JSON object per line, ``json=False`` readable text; ``None`` keeps
    the format an earlier call chose (text on the first call), so a later call that only sets the
    level does not undo ``LOG_FORMAT``. ``secrets`` (``Settings.secrets``: by variable name) are
    scrubbed too, besides the secret variables of the environment.
    """
    _configured_secrets.update(secrets or {})
    root = logging.getLogger()
    ours = [h for h in root.handlers if any(isinstance(f, ScrubbingFilter) for f in h.filters)]
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_formatter(bool(json)))
        handler.addFilter(ScrubbingFilter())
        root.addHandler(handler)
    elif json is not None:
        for existing in ours:
            if isinstance(existing.formatter, JsonLineFormatter) != json:
                existing.setFormatter(_formatter(json))
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Libraries that narrate their own start-up at INFO/DEBUG.
    for noisy in ("faiss", "faiss.loader", "sentence_transformers", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
