"""One frozen ``Settings`` built from the environment (and a ``.env`` file), plus CLI overrides.

Usage::

    settings = Settings.from_env().with_overrides(index_dir=Path("/tmp/idx"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"
LOG_FORMATS = ("text", "json")


class ConfigError(Exception):
    """A configuration mistake a user can fix; the message names the variable."""


def _load_dotenv() -> None:
    """Read ``.env`` from the working directory when present; real environment variables win."""
    try:
        from dotenv import load_dotenv
    except ImportError:  # pragma: no cover - python-dotenv is a dependency
        return
    load_dotenv(Path.cwd() / ".env", override=False)


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from None


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}.")


def _env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}.")
    return value


def _env_path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    return Path(raw).expanduser() if raw else default


@dataclass(frozen=True)
class Settings:
    """Everything ban-bot can be configured with. Environment variable in brackets."""

    knowledge_dir: Path = ROOT / "knowledge"  # BAN_BOT_KNOWLEDGE_DIR
    index_dir: Path = ROOT / "index"  # BAN_BOT_INDEX_DIR
    data_dir: Path = ROOT / "data"  # BAN_BOT_DATA_DIR (feedback and question log)
    model: str = DEFAULT_MODEL  # BAN_BOT_MODEL: "bundled:..." or a sentence-transformers path/name
    min_score: float | None = None  # BAN_BOT_MIN_SCORE: overrides the calibrated decline threshold
    encoder_threads: int = 2  # BAN_BOT_ENCODER_THREADS
    timezone: str = "America/New_York"  # BAN_BOT_TIMEZONE: how deadlines are shown
    log_level: str = "INFO"  # LOG_LEVEL
    log_format: str = "text"  # LOG_FORMAT: text (one readable line) or json (one object a line)
    # Slack
    slack_bot_token: str | None = field(default=None, repr=False)  # SLACK_BOT_TOKEN
    slack_app_token: str | None = field(default=None, repr=False)  # SLACK_APP_TOKEN
    slack_signing_secret: str | None = field(default=None, repr=False)  # SLACK_SIGNING_SECRET
    slack_api_url: str | None = None  # SLACK_API_URL (GovSlack, proxies, tests)
    port: int = 3000  # PORT
    host: str = "0.0.0.0"  # HOST
    # Operations
    database_url: str | None = field(default=None, repr=False)  # DATABASE_URL
    question_log: bool = True  # BAN_BOT_QUESTION_LOG
    retention_days: int = 90  # BAN_BOT_RETENTION_DAYS
    workers: int = 4  # BAN_BOT_WORKERS: answering threads
    queue_size: int = 64  # BAN_BOT_QUEUE_SIZE
    rate_limit_per_minute: int = 20  # BAN_BOT_RATE_LIMIT (questions per user per minute)
    user_hash_salt: str | None = field(default=None, repr=False)  # BAN_BOT_USER_HASH_SALT
    working_reaction_after: float = 1.0  # BAN_BOT_WORKING_REACTION_AFTER (seconds before 👀)
    reload_interval: float = 1.0  # BAN_BOT_RELOAD_INTERVAL (seconds between index/CURRENT checks)
    shutdown_timeout: float = 10.0  # BAN_BOT_SHUTDOWN_TIMEOUT (seconds to finish answers on exit)
    # BAN_BOT_DM_CONTEXT_MINUTES: a DM's earlier turns stop being context after this quiet gap
    dm_context_minutes: float = 30.0
    experts_channel: str | None = None  # BAN_BOT_EXPERTS_CHANNEL: where "Ask the experts" asks
    experts_group: str | None = None  # BAN_BOT_EXPERTS_GROUP: the user group mentioned there
    help_channels: tuple[str, ...] = ()  # BAN_BOT_HELP_CHANNELS: every message is a question

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``, after reading ``.env``)."""
        if env is None:
            if dotenv:
                _load_dotenv()
            env = os.environ
        d = cls()
        min_score_raw = env.get("BAN_BOT_MIN_SCORE")
        return cls(
            knowledge_dir=_env_path(env, "BAN_BOT_KNOWLEDGE_DIR", d.knowledge_dir),
            index_dir=_env_path(env, "BAN_BOT_INDEX_DIR", d.index_dir),
            data_dir=_env_path(env, "BAN_BOT_DATA_DIR", d.data_dir),
            model=env.get("BAN_BOT_MODEL") or d.model,
            min_score=(_env_float(env, "BAN_BOT_MIN_SCORE", 0.0) if min_score_raw else d.min_score),
            encoder_threads=_env_int(env, "BAN_BOT_ENCODER_THREADS", d.encoder_threads),
            timezone=env.get("BAN_BOT_TIMEZONE") or d.timezone,
            log_level=(env.get("LOG_LEVEL") or d.log_level).upper(),
            log_format=_env_choice(env, "LOG_FORMAT", LOG_FORMATS, d.log_format),
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_api_url=env.get("SLACK_API_URL") or None,
            port=_env_int(env, "PORT", d.port),
            host=env.get("HOST") or d.host,
            database_url=env.get("DATABASE_URL") or None,
            question_log=_env_bool(env, "BAN_BOT_QUESTION_LOG", d.question_log),
            retention_days=_env_int(env, "BAN_BOT_RETENTION_DAYS", d.retention_days),
            workers=_env_int(env, "BAN_BOT_WORKERS", d.workers),
            queue_size=_env_int(env, "BAN_BOT_QUEUE_SIZE", d.queue_size),
            rate_limit_per_minute=_env_int(env, "BAN_BOT_RATE_LIMIT", d.rate_limit_per_minute),
            user_hash_salt=env.get("BAN_BOT_USER_HASH_SALT") or None,
            working_reaction_after=_env_float(
                env, "BAN_BOT_WORKING_REACTION_AFTER", d.working_reaction_after
            ),
            reload_interval=_env_float(env, "BAN_BOT_RELOAD_INTERVAL", d.reload_interval),
            shutdown_timeout=_env_float(env, "BAN_BOT_SHUTDOWN_TIMEOUT", d.shutdown_timeout),
            dm_context_minutes=_env_float(env, "BAN_BOT_DM_CONTEXT_MINUTES", d.dm_context_minutes),
            experts_channel=(env.get("BAN_BOT_EXPERTS_CHANNEL") or "").strip() or None,
            experts_group=(env.get("BAN_BOT_EXPERTS_GROUP") or "").strip() or None,
            help_channels=tuple((env.get("BAN_BOT_HELP_CHANNELS") or "").replace(",", " ").split()),
        )

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` (an unset CLI option) is ignored."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def require(self, *names: str) -> None:
        """Raise ``ConfigError`` naming the first missing environment variable among ``names``."""
        for name in names:
            if not getattr(self, name.lower(), None):
                raise ConfigError(f"{name} is not set; add it to the environment or to .env.")

    @property
    def has_socket_mode_tokens(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)
