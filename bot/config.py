"""One frozen ``Settings`` built from the environment (and a ``.env`` file), plus CLI overrides.

Each setting is one field: its environment variable, default and description, from which the
README's configuration table is generated (``python -m bot.config --markdown``). pydantic
checks and converts the values; a bad one is a ``ConfigError`` naming the variable.

Usage::

    settings = Settings.from_env().with_overrides(index_dir=Path("/tmp/idx"))
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)


class ConfigError(Exception):
    """A configuration mistake a user can fix; the message names the variable."""


def setting(
    default: Any, env: str, description: str, *, shown: str | None = None, secret: bool = False
) -> Any:
    """A ``Settings`` field read from the environment variable ``env``.

    ``shown`` is the default as the README tells it, where the value itself says little
    (``None`` for "calibrated", "generated"); a ``secret`` is kept out of ``repr`` and logs.
    """
    extra: dict[str, Any] = {"env": env, "secret": secret}
    if shown is not None:
        extra["shown"] = shown
    return Field(
        default,
        validation_alias=env,
        description=description,
        repr=not secret,
        json_schema_extra=extra,
    )


class Settings(BaseModel):
    """Everything ban-bot can be configured with; each field names its environment variable."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    # Slack
    slack_bot_token: str | None = setting(
        None, "SLACK_BOT_TOKEN", "bot token (`xoxb-...`)", secret=True
    )
    slack_app_token: str | None = setting(
        None, "SLACK_APP_TOKEN", "app-level token (`xapp-...`): Socket Mode", secret=True
    )
    slack_signing_secret: str | None = setting(
        None, "SLACK_SIGNING_SECRET", "request signing secret: HTTP mode", secret=True
    )
    slack_api_url: str | None = setting(
        None,
        "SLACK_API_URL",
        "Web API base URL (GovSlack, proxies, tests)",
        shown="`https://slack.com/api/`",
    )
    port: int = setting(3000, "PORT", "HTTP mode: the port to listen on")
    host: str = setting("0.0.0.0", "HOST", "HTTP mode: the address to listen on")
    # Knowledge, index and answers
    knowledge_dir: Path = setting(ROOT / "knowledge", "BAN_BOT_KNOWLEDGE_DIR", "the curated YAML")
    index_dir: Path = setting(ROOT / "index", "BAN_BOT_INDEX_DIR", "built index (generated)")
    data_dir: Path = setting(
        ROOT / "data", "BAN_BOT_DATA_DIR", "feedback and question log (SQLite)"
    )
    model: str = setting(
        DEFAULT_MODEL,
        "BAN_BOT_MODEL",
        "embedding model: the bundled one, or a local sentence-transformers folder",
    )
    min_score: float | None = setting(
        None,
        "BAN_BOT_MIN_SCORE",
        "decline below this confidence",
        shown="0.52 (calibrated)",  # bot/answer.py DEFAULT_MIN_SCORE; tests check they agree
    )
    encoder_threads: int = setting(
        2, "BAN_BOT_ENCODER_THREADS", "ONNX Runtime threads for encoding questions"
    )
    timezone: str = setting(
        "America/New_York", "BAN_BOT_TIMEZONE", 'the zone in which "today" is counted'
    )
    # Operations
    question_log: bool = setting(
        True, "BAN_BOT_QUESTION_LOG", "record declined and 👎 questions for `ban-bot report`"
    )
    retention_days: int = setting(
        90, "BAN_BOT_RETENTION_DAYS", "days the question log and feedback are kept"
    )
    user_hash_salt: str | None = setting(
        None,
        "BAN_BOT_USER_HASH_SALT",
        "salt for hashing Slack user ids (else a random one in `data/`)",
        shown="generated",
        secret=True,
    )
    working_reaction_after: float = setting(
        1.0, "BAN_BOT_WORKING_REACTION_AFTER", "seconds before the 👀 reaction"
    )
    workers: int = setting(4, "BAN_BOT_WORKERS", "answering threads")
    queue_size: int = setting(64, "BAN_BOT_QUEUE_SIZE", "questions waiting for a thread, at most")
    rate_limit_per_minute: int = setting(
        20, "BAN_BOT_RATE_LIMIT", "questions per user per minute (0: no limit)"
    )
    database_url: str | None = setting(
        None,
        "DATABASE_URL",
        "`postgresql://...` to share the store between replicas",
        shown="SQLite in `data/`",
        secret=True,
    )
    reload_interval: float = setting(
        1.0,
        "BAN_BOT_RELOAD_INTERVAL",
        "seconds between checks for a new index build (SIGHUP: at once)",
    )
    shutdown_timeout: float = setting(
        10.0, "BAN_BOT_SHUTDOWN_TIMEOUT", "seconds SIGTERM waits for the answers in flight"
    )
    dm_context_minutes: float = setting(
        30.0,
        "BAN_BOT_DM_CONTEXT_MINUTES",
        "minutes of quiet after which a DM's earlier questions stop being context",
    )
    experts_channel: str | None = setting(
        None,
        "BAN_BOT_EXPERTS_CHANNEL",
        'channel id where "Ask the experts" posts declined and 👎 questions (unset: no button)',
    )
    experts_group: str | None = setting(
        None, "BAN_BOT_EXPERTS_GROUP", "user group id mentioned in the experts' channel"
    )
    help_channels: Annotated[tuple[str, ...], NoDecode] = setting(
        (),
        "BAN_BOT_HELP_CHANNELS",
        "channel ids, comma-separated, where every message is a question (answered only when sure)",
        shown="",
    )
    log_level: str = setting("INFO", "LOG_LEVEL", "`DEBUG`, `INFO`, `WARNING` or `ERROR`")
    log_format: LogFormat = setting("text", "LOG_FORMAT", "`json` for one JSON object per line")

    @field_validator("knowledge_dir", "index_dir", "data_dir", mode="after")
    @classmethod
    def _expand_user(cls, path: Path) -> Path:
        return path.expanduser()

    @field_validator("help_channels", mode="before")
    @classmethod
    def _channel_list(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value

    @field_validator("log_level", mode="after")
    @classmethod
    def _upper(cls, level: str) -> str:
        return level.upper()

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``, and ``.env`` in the working
        directory with ``dotenv``, whose values the real environment overrides).

        An empty variable counts as unset. Raises ``ConfigError`` naming the first bad one.
        """
        env_file = Path.cwd() / ".env" if dotenv and env is None else None
        token = _SOURCES.set((env, env_file))
        try:
            read = _Environment()
        except ValidationError as e:
            raise _config_error(e) from None
        finally:
            _SOURCES.reset(token)
        return cls.model_validate(read.model_dump())

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` (an unset CLI option) is ignored."""
        unknown = set(overrides) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        try:
            return self.model_validate({**self.model_dump(), **changes})
        except ValidationError as e:
            raise _config_error(e) from None

    def require(self, *names: str) -> None:
        """Raise ``ConfigError`` naming the first missing environment variable among ``names``."""
        for name in names:
            if not getattr(self, _FIELD_OF[name]):
                raise ConfigError(f"{name} is not set; add it to the environment or to .env.")

    @property
    def has_socket_mode_tokens(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)

    @property
    def secrets(self) -> dict[str, str]:
        """The secrets that are set, by variable name (for scrubbing logs)."""
        return {
            _extra(name)["env"]: value
            for name in type(self).model_fields
            if _extra(name)["secret"] and (value := getattr(self, name))
        }


def _extra(field: str) -> dict[str, Any]:
    extra = Settings.model_fields[field].json_schema_extra
    assert isinstance(extra, dict)
    return extra


_FIELD_OF = {_extra(name)["env"]: name for name in Settings.model_fields}
# What from_env reads while it builds an _Environment: its ``env`` (None: the process
# environment) and the .env file, if any.
_SOURCES: contextvars.ContextVar[tuple[Mapping[str, str] | None, Path | None]] = (
    contextvars.ContextVar("ban_bot_settings_sources", default=(None, None))
)


class _MappingSource(EnvSettingsSource):
    """Environment variables from a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _Environment(Settings, BaseSettings):
    """``Settings`` as read by pydantic-settings from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env, env_file = _SOURCES.get()
        if env is not None:
            return (_MappingSource(settings_cls, env),)
        if env_file is None:
            return (env_settings,)
        # The real environment wins over .env.
        return env_settings, DotEnvSettingsSource(settings_cls, env_file=env_file)


_EXPECTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
}


def _config_error(error: ValidationError) -> ConfigError:
    """The first problem as one sentence naming the variable, as a user can fix it."""
    first = error.errors(include_url=False)[0]
    where = str(first["loc"][0]) if first["loc"] else "?"
    field = _FIELD_OF.get(where, where)
    name = _extra(field)["env"] if field in Settings.model_fields else where
    got = first.get("input")
    expected = _EXPECTED.get(first["type"])
    if first["type"] == "literal_error":
        expected = "one of " + ", ".join(get_args(Settings.model_fields[field].annotation))
    if expected is None:
        expected = first["msg"][:1].lower() + first["msg"][1:]
        return ConfigError(f"{name}: {expected}, got {got!r}.")
    return ConfigError(f"{name} must be {expected}, got {got!r}.")


def markdown_table() -> str:
    """The README's configuration table: each variable, its default and what it is for."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        extra = _extra(name)
        lines.append(
            f"| `{extra['env']}` | {_shown_default(field.default, extra)} | {field.description} |"
        )
    return "\n".join(lines)


def _shown_default(value: Any, extra: dict[str, Any]) -> str:
    if "shown" in extra:
        return str(extra["shown"])
    if value is None:
        return ""
    if isinstance(value, Path) and value.is_relative_to(ROOT):
        return f"`{value.relative_to(ROOT)}/`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m bot.config --markdown   (the README's configuration table)")
    print(markdown_table())
