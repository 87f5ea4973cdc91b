"""Settings from the environment and ``.env``: every variable, its default, a bad value named in
one sentence; and the README's configuration table, generated from ``Settings``, kept true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import ROOT, ConfigError, Settings, markdown_table

README = ROOT / "README.md"
TABLE = re.compile(r"<!-- settings table: .*? -->\n(.*?)\n<!-- end of settings table -->", re.S)


def test_the_readme_table_is_the_one_generated_from_settings() -> None:
    found = TABLE.search(README.read_text())
    assert found, "README.md has no generated settings table"
    assert found.group(1) == markdown_table(), "run: python -m bot.config --markdown"


def test_the_table_is_printed_by_python_m_bot_config() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.config", "--markdown"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == markdown_table() + "\n"


def test_every_setting_has_a_variable_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert isinstance(field.validation_alias, str) and field.validation_alias.isupper(), name


def test_the_decline_threshold_shown_is_the_calibrated_one() -> None:
    from bot.answer import DEFAULT_MIN_SCORE

    assert f"| `BAN_BOT_MIN_SCORE` | {DEFAULT_MIN_SCORE} (calibrated) |" in markdown_table()


def test_defaults_and_variables() -> None:
    defaults = Settings.from_env({})
    assert defaults == Settings()
    assert (defaults.knowledge_dir, defaults.port, defaults.rate_limit_per_minute) == (
        ROOT / "knowledge",
        3000,
        20,
    )
    assert defaults.min_score is None and defaults.question_log is True
    settings = Settings.from_env(
        {
            "BAN_BOT_INDEX_DIR": "~/idx",
            "BAN_BOT_RATE_LIMIT": "5",
            "BAN_BOT_QUESTION_LOG": "off",
            "BAN_BOT_MIN_SCORE": "0.6",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "JSON",
            "PORT": "",  # empty: the default
            "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        }
    )
    assert settings.index_dir == Path.home() / "idx"
    assert (settings.rate_limit_per_minute, settings.question_log, settings.min_score) == (
        5,
        False,
        0.6,
    )
    assert (settings.log_level, settings.log_format, settings.port) == ("DEBUG", "json", 3000)
    assert settings.has_socket_mode_tokens is False
    assert "xoxb" not in repr(settings)  # secrets stay out of repr
    assert settings.secrets == {"SLACK_BOT_TOKEN": "xoxb-1-2-3"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BAN_BOT_ENCODER_THREADS": "two"}, "BAN_BOT_ENCODER_THREADS must be a whole number, got 'two'."),
        ({"BAN_BOT_WORKING_REACTION_AFTER": "soon"}, "BAN_BOT_WORKING_REACTION_AFTER must be a number, got 'soon'."),
        ({"BAN_BOT_QUESTION_LOG": "maybe"}, "BAN_BOT_QUESTION_LOG must be true or false, got 'maybe'."),
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT must be one of text, json, got 'yaml'."),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_sentence_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env(env)
    assert str(e.value) == message
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no pydantic dump


def test_dotenv_is_read_and_the_real_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("BAN_BOT_WORKERS=7\nBAN_BOT_TIMEZONE=UTC\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAN_BOT_TIMEZONE", "Europe/Berlin")
    settings = Settings.from_env()
    assert (settings.workers, settings.timezone) == (7, "Europe/Berlin")
    assert Settings.from_env(dotenv=False).workers == 4
    assert Settings.from_env({}).workers == 4  # a given mapping is all that is read


def test_secrets_read_from_dotenv_are_scrubbed_from_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from bot.logs import configure_logging, scrub

    (tmp_path / ".env").write_text("SLACK_SIGNING_SECRET=only-in-dotenv-0123456789\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.slack_signing_secret == "only-in-dotenv-0123456789"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", secrets=settings.secrets)
    finally:
        root.handlers[:], root.level = handlers, level
    assert scrub("used only-in-dotenv-0123456789") == "used [SLACK_SIGNING_SECRET redacted]"


def test_overrides_require_and_frozen() -> None:
    settings = Settings()
    changed = settings.with_overrides(index_dir=Path("/tmp/i"), model=None)
    assert changed.index_dir == Path("/tmp/i") and changed.model == settings.model
    with pytest.raises(TypeError, match="unknown settings"):
        settings.with_overrides(nonsense=1)
    with pytest.raises(ConfigError, match=r"^SLACK_SIGNING_SECRET is not set; add it"):
        settings.with_overrides(slack_bot_token="xoxb-1").require(
            "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"
        )
    with pytest.raises(ValidationError):
        settings.workers = 8
