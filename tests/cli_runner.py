"""``ban-bot`` run in process with click's ``CliRunner``, as simonw/llm's tests run ``llm``: the
exit code, stdout and stderr apart, with the environment given; the logging set-up the command
makes is undone afterwards. For the few tests where the process itself is under test (imports,
cold start, signals, a terminal), run ``python -m bot`` in a subprocess instead.

Usage::

    r = ban_bot(["deadlines", "updates"], env={"BAN_BOT_TIMEZONE": "UTC"})
    assert r.returncode == 0 and "September 29, 2024" in r.stdout
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from click.testing import CliRunner

from bot.cli import cli


@dataclass(frozen=True)
class Ran:
    """What a run of the command left: as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def ban_bot(
    args: Sequence[str], *, stdin: str | None = None, env: Mapping[str, str | None] | None = None
) -> Ran:
    """Run ``ban-bot ARGS``; an exception the command does not turn into a message is raised."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(
            cli, list(args), input=stdin, env=dict(env or {}), prog_name="ban-bot"
        )
    finally:
        # configure_logging added a handler on the runner's stderr, which is gone now.
        root.handlers[:] = handlers
        root.setLevel(level)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)
