"""``ban-bot serve``: configuration errors name the variable; the real HTTP serve path end to end
(uvicorn in a subprocess, /healthz 503 then 200, signed requests, Slack calls to the stand-in)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mock_slack import MockWebApi, signed_headers
from mock_slack.signing import command_body, event_body
from slack_harness import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, USER, http

from bot.config import ConfigError, Settings
from bot.slack.app import build_bot
from bot.slack.serve import serve
from bot.store import Store

BAN_BOT = str(Path(sys.executable).with_name("ban-bot"))


def test_socket_mode_without_an_app_token_names_the_variable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, slack_bot_token=BOT_TOKEN)
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN") as e:
        serve(settings, http=False, port=None)
    assert "--http" in str(e.value)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        serve(Settings(data_dir=tmp_path, slack_app_token=APP_TOKEN), http=False, port=None)


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({"slack_bot_token": BOT_TOKEN}, "SLACK_SIGNING_SECRET"),
        ({"slack_signing_secret": SIGNING_SECRET}, "SLACK_BOT_TOKEN"),
    ],
)
def test_http_mode_names_the_missing_variable(
    tmp_path: Path, present: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        serve(Settings(data_dir=tmp_path).with_overrides(**present), http=True, port=0)


def test_a_token_slack_refuses_is_a_clear_error_without_the_token(
    real_settings: Settings, real_engine: Any, tmp_path: Path
) -> None:
    revoked = "xoxb-revoked-0000000000"
    with MockWebApi() as api:
        settings = real_settings.model_copy(
            update=dict(data_dir=tmp_path, slack_bot_token=revoked, slack_api_url=api.url)
        )
        with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN") as e:
            build_bot(settings, real_engine, store=Store.open(settings))
    assert revoked not in str(e.value) and "invalid_auth" in str(e.value)


def test_cli_serve_without_tokens_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    done = subprocess.run(
        [BAN_BOT, "serve"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 1
    assert "SLACK_APP_TOKEN" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_http_end_to_end(real_settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with MockWebApi() as api:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api.url,
            "BAN_BOT_INDEX_DIR": str(real_settings.index_dir),
            "BAN_BOT_KNOWLEDGE_DIR": str(real_settings.knowledge_dir),
            "BAN_BOT_DATA_DIR": str(tmp_path / "data"),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "DEBUG",
        }
        server = subprocess.Popen(
            [BAN_BOT, "serve", "--http", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            statuses = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    statuses.append(http(f"{base}/healthz").status)
                except OSError:
                    statuses.append(0)  # not listening yet
                if statuses[-1] == 200:
                    break
                time.sleep(0.05)
            assert statuses[-1] == 200, statuses
            assert set(statuses) <= {0, 503, 200}  # never a 200 before the engine is ready

            body = command_body("/ban-deadlines", "updates", response_url=api.response_url())
            reply = http(
                f"{base}/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
            )
            assert reply.status == 200 and "September 29, 2024" in reply.json()["text"]
            assert http(f"{base}/slack/events", data=body, headers={}).status == 401

            mention = event_body(
                {
                    "type": "app_mention",
                    "user": USER,
                    "text": "<@UBANBOT01> when do kaspersky updates stop?",
                    "ts": "1710000099.000001",
                    "channel": "C0GENERAL",
                }
            )
            headers = signed_headers(SIGNING_SECRET, mention)
            assert http(f"{base}/slack/events", data=mention, headers=headers).status == 200
            [post] = api.wait_for("chat.postMessage")
            assert post.body["thread_ts"] == "1710000099.000001"
        finally:
            server.send_signal(signal.SIGINT)
            _, stderr = server.communicate(timeout=30)
    assert server.returncode in (0, 130), stderr  # 130: the CLI's exit status for Ctrl-C
    for secret in (BOT_TOKEN, SIGNING_SECRET):
        assert secret not in stderr
