"""Logs as an operator sees them: LOG_FORMAT and LOG_LEVEL from the environment, scrubbed.

Each test runs a real process that configures logging the way ``ban-bot`` does and logs like the
Slack surface does (an ``event_id`` in ``extra=``), then reads its standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cli_runner import ban_bot

from bot.config import ROOT

BOT_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"

# Logs the secrets every way they can slip in: a message argument, an extra field, an exception.
SCRIPT = """
import logging, os
from bot.config import Settings
from bot.logs import configure_logging

settings = Settings.from_env()
configure_logging(settings.log_level, json=settings.log_format == "json")
log = logging.getLogger("bot.slack.events")
log.info("answered with %s", os.environ["SLACK_BOT_TOKEN"], extra={"event_id": "Ev0A1"})
log.debug("debug detail", extra={"event_id": "Ev0A2"})
try:
    raise RuntimeError("signature check used " + os.environ["SLACK_SIGNING_SECRET"])
except RuntimeError:
    log.exception(
        "handler failed", extra={"event_id": "Ev0A3", "detail": os.environ["SLACK_BOT_TOKEN"]}
    )
configure_logging(settings.log_level)  # a second call, as `serve` makes, keeps the format
log.warning("after reconfiguring", extra={"event_id": "Ev0A4", "color_message": "\\x1b[36m"})
"""


def run_logging(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            **env,
        },
        timeout=60,
    )


def assert_no_secrets(text: str) -> None:
    assert BOT_TOKEN not in text and "xoxb-1234567890" not in text
    assert SIGNING_SECRET not in text


def test_json_logs_are_one_object_a_line_with_the_event_id() -> None:
    r = run_logging(LOG_FORMAT="json", LOG_LEVEL="INFO")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stderr.splitlines()]
    assert [rec["event_id"] for rec in records] == ["Ev0A1", "Ev0A3", "Ev0A4"]  # no DEBUG
    first = records[0]
    assert set(first) >= {"time", "level", "logger", "message", "event_id"}
    assert first["level"] == "INFO" and first["logger"] == "bot.slack.events"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert first["message"] == "answered with xoxb-[redacted]"
    failed = records[1]
    assert failed["level"] == "ERROR" and "RuntimeError" in failed["exc_info"]
    assert "[SLACK_SIGNING_SECRET redacted]" in failed["exc_info"]
    assert failed["detail"] == "xoxb-[redacted]"
    assert records[2]["message"] == "after reconfiguring"
    assert "color_message" not in records[2]  # uvicorn's coloured copy of the message
    assert_no_secrets(r.stderr)


def test_log_level_comes_from_the_environment() -> None:
    r = run_logging(LOG_FORMAT="json", LOG_LEVEL="debug")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stderr.splitlines()]
    assert [rec["event_id"] for rec in records] == ["Ev0A1", "Ev0A2", "Ev0A3", "Ev0A4"]
    assert records[1]["level"] == "DEBUG"


def test_text_logs_are_readable_lines_and_scrubbed_too() -> None:
    r = run_logging(LOG_FORMAT="text")
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert " INFO bot.slack.events: answered with xoxb-[redacted] [event_id=Ev0A1]" in first
    assert "Traceback" in r.stderr and "[SLACK_SIGNING_SECRET redacted]" in r.stderr
    assert not r.stderr.lstrip().startswith("{")
    assert_no_secrets(r.stderr)


def test_an_unknown_log_format_is_named() -> None:
    r = ban_bot(["deadlines"], env={"LOG_FORMAT": "yaml"})
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: LOG_FORMAT must be one of text, json, got 'yaml'."
