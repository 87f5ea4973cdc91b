"""The local chat: the same handlers as Slack, rendered as terminal text; stdin line by line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.chat import PROMPT, mrkdwn_to_text, run_chat
from bot.config import Settings


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _chat(real_settings: Settings, real_engine: Any, text: str, stdin: type = io.StringIO) -> str:
    out = io.StringIO()
    assert run_chat(real_settings, real_engine, stdin=stdin(text), stdout=out) == 0
    return out.getvalue()


def test_a_question_per_line_is_answered_with_sources(
    real_settings: Settings, real_engine: Any
) -> None:
    out = _chat(real_settings, real_engine, "when do kaspersky updates stop?\n\n")
    assert "September 29, 2024" in out
    assert "Sources" in out and "(https://" in out  # links rendered as "title (url)"
    assert PROMPT not in out  # no prompt when stdin is not a terminal
    assert "&lt;" not in out and "&amp;" not in out and "*" not in out


def test_slash_commands_work_as_in_slack(real_settings: Settings, real_engine: Any) -> None:
    out = _chat(
        real_settings,
        real_engine,
        "/ban-deadlines updates\n/ban-help\n/ban-ask can I still buy kaspersky?\n/ban-nope\n",
    )
    assert "Kaspersky ban timeline" in out and "2 years ago" in out
    assert "What I know about the 2024 US ban" in out
    assert "/ban-ask QUESTION" in out
    assert "Unknown command /ban-nope" in out


def test_follow_ups_are_offered_as_questions_to_type(
    real_settings: Settings, real_engine: Any
) -> None:
    out = _chat(real_settings, real_engine, "when do kaspersky updates stop?\n")
    assert "you could also ask:" in out
    assert "Helpful" not in out and "Share in channel" not in out  # buttons with no meaning here


def test_off_topic_and_garbage_lines_never_crash(real_settings: Settings, real_engine: Any) -> None:
    lines = ["what's the best pizza near the office?", "\x00\x1b[31m", "<!channel>", "x" * 50_000]
    out = _chat(real_settings, real_engine, "\n".join(lines) + "\n")
    assert "Sorry" not in out
    assert out.count("\n\n") >= 3


def test_prompt_and_banner_on_a_terminal(real_settings: Settings, real_engine: Any) -> None:
    out = _chat(real_settings, real_engine, "/ban-help\n", stdin=FakeTty)
    assert out.startswith("ban-bot:") and out.count(PROMPT) == 2


def test_mrkdwn_renders_as_plain_terminal_text() -> None:
    text = (
        "*Sources*\n<https://a.example/?x=1&amp;y=2|A &amp; B> — _unconfirmed_ `code` &lt;!here&gt;"
    )
    assert mrkdwn_to_text(text) == (
        "Sources\nA & B (https://a.example/?x=1&y=2) — unconfirmed code <!here>"
    )


def test_echo_pipe_into_ban_bot_chat(real_settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BAN_BOT_INDEX_DIR": str(real_settings.index_dir),
        "BAN_BOT_KNOWLEDGE_DIR": str(real_settings.knowledge_dir),
        "BAN_BOT_DATA_DIR": str(tmp_path / "data"),
    }
    ban_bot = Path(sys.executable).with_name("ban-bot")
    done = subprocess.run(
        [str(ban_bot), "chat"],
        input="when do kaspersky updates stop?\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "September 29, 2024" in done.stdout
