"""pytest fixtures for the Slack tests (load with ``pytest_plugins = ["slack_fixtures"]``):
the real app over HTTP with the real engine (``real_engine`` from conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mock_slack import MockWebApi
from slack_harness import SlackHarness, UvicornThread, harness_settings

from bot.config import Settings
from bot.slack.serve import HttpSurface


@pytest.fixture
def slack_api() -> Iterator[MockWebApi]:
    with MockWebApi() as api:
        yield api


@pytest.fixture
def make_slack(
    real_settings: Settings, real_engine: Any, slack_api: MockWebApi, tmp_path: Path
) -> Iterator[Callable[..., SlackHarness]]:
    """Start the real app over HTTP; keyword arguments override settings."""
    started: list[UvicornThread] = []

    def make(**overrides: Any) -> SlackHarness:
        settings = replace(
            harness_settings(real_settings, slack_api, tmp_path / "data"), **overrides
        )
        surface = HttpSurface(settings, load_engine=lambda _: real_engine)
        server = UvicornThread(surface.asgi).__enter__()
        started.append(server)
        assert surface.ready.wait(10), surface.error
        return SlackHarness(server.url, slack_api, surface, settings)

    yield make
    for server in started:
        server.__exit__()


@pytest.fixture
def slack(make_slack: Callable[..., SlackHarness]) -> SlackHarness:
    return make_slack()
