"""The local chat: the same handlers as Slack, rendered as terminal text; stdin line by line."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.chat import PROMPT, run_chat
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
    assert "Sources:" in out and " https://" in out
    assert "June 2024" in out and "2024-06" not in out  # source dates as people write them
    assert PROMPT not in out  # no prompt when stdin is not a terminal
    assert "&lt;" not in out and "&amp;" not in out and "*" not in out


def test_slash_commands_work_as_in_slack(real_settings: Settings, real_engine: Any) -> None:
    out = _chat(
        real_settings,
        real_engine,
        "/ban-deadlines updates\n/ban-help\n/ban-ask can I still buy kaspersky?\n/ban-nope\n",
    )
    assert "dates that mention “updates”" in out and "2 years ago" in out
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


def test_the_previous_lines_are_the_context(real_settings: Settings, real_engine: Any) -> None:
    out = _chat(real_settings, real_engine, "when did kaspersky updates stop?\nwhy?\n")
    first, second = out.strip().split("\n\n", 1)
    assert "September 29, 2024" in first
    assert "I don't know" not in second
    assert any(w in second for w in ("Russia", "national security", "minimize disruption"))


def test_a_follow_up_says_what_it_followed_and_how_to_ask_it_alone(
    real_settings: Settings, real_engine: Any
) -> None:
    lines = "which US agency sanctioned Kaspersky's executives?\nhow many people?\n"
    first, second = _chat(real_settings, real_engine, lines).strip().split("\n\n", 1)
    topic = real_engine.knowledge.by_id["ofac-designations"].questions[0]
    assert "Following up" not in first
    assert second.startswith(f"↪ Following up on “{topic}”\n") and "12" in second
    assert "Not what you meant? /ban-ask how many people? asks it on its own." in second
    alone = _chat(real_settings, real_engine, "/ban-ask how many people?\n")
    assert "Following up" not in alone and "12 " not in alone


def test_on_a_terminal_the_sentence_a_follow_up_is_about_is_bold(
    real_settings: Settings, real_engine: Any
) -> None:
    lines = "did kaspersky sue over the 2017 bans?\nwho was the judge\n"
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    assert run_chat(real_settings, real_engine, stdin=FakeTty(lines), stdout=out) == 0
    first, second = out.getvalue().split("\n\n", 1)
    assert "\033[1m" not in first  # asked on its own: nothing set off
    assert re.search(r"\033\[1mJudge Colleen Kollar-Kotelly[^\033]*\033\[0m", second)
    piped = _chat(real_settings, real_engine, lines)  # into a pipe: plain text
    assert "\033" not in piped and "Judge Colleen Kollar-Kotelly" in piped


def test_small_talk_in_the_chat(real_settings: Settings, real_engine: Any) -> None:
    out = _chat(real_settings, real_engine, "hi\nthanks\n")
    assert "I'm ban-bot" in out and "For example:" in out and "welcome" in out
    assert "I don't know" not in out


def test_deadlines_lead_with_the_key_dates_and_show_history_on_request(
    real_settings: Settings, real_engine: Any
) -> None:
    key = _chat(real_settings, real_engine, "/ban-deadlines\n")
    assert "the key dates" in key and "September 29, 2024" in key and "July 20, 2024" in key
    assert "2017" not in key.split("more dates")[0]  # the history waits to be asked for
    assert "/ban-deadlines history" in key
    history = _chat(real_settings, real_engine, "/ban-deadlines history\n")
    assert "December 12, 2017" in history and "September 29, 2024" in history


def test_a_decline_in_the_chat_names_the_chat_commands(
    real_settings: Settings, real_engine: Any
) -> None:
    out = _chat(real_settings, real_engine, "who wrote the novel Middlemarch?\n")
    assert "I don't know" in out and "/ban-deadlines" in out and "For example:" in out


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
