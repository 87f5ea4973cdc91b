"""pytest fixtures for the Slack tests (load with ``pytest_plugins = ["slack_fixtures"]``):
the real app with the real engine (``real_engine`` from conftest.py), dispatched in process,
or over real HTTP with ``make_slack(http=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mock_slack import MockWebApi
from slack_harness import SlackHarness, UvicornThread, harness_settings
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.config import Settings
from bot.slack import retries
from bot.slack.serve import HttpSurface


@pytest.fixture
def slack_api() -> Iterator[MockWebApi]:
    with MockWebApi() as api:
        yield api


@pytest.fixture
def make_slack(
    real_settings: Settings, real_engine: Any, slack_api: MockWebApi, tmp_path: Path
) -> Iterator[Callable[..., SlackHarness]]:
    """Start the real app; ``http=True`` serves it on uvicorn. Keyword arguments override
    settings."""
    servers: list[UvicornThread] = []
    surfaces: list[HttpSurface] = []

    def make(*, http: bool = False, **overrides: Any) -> SlackHarness:
        settings = harness_settings(real_settings, slack_api, tmp_path / "data").model_copy(
            update=dict(**overrides)
        )
        surface = HttpSurface(settings, load_engine=lambda _: real_engine)
        if not http:
            surface.load()  # what the server's start-up does, here on this thread
            surfaces.append(surface)
            assert surface.ready.is_set(), surface.error
            return SlackHarness(slack_api, surface, settings)
        server = UvicornThread(surface.asgi).__enter__()
        servers.append(server)
        assert surface.ready.wait(10), surface.error
        return SlackHarness(slack_api, surface, settings, url=server.url)

    yield make
    for server in servers:
        server.__exit__()  # the lifespan shuts the surface down
    for surface in surfaces:
        surface.shutdown()


class _NoJitter(Jitter):
    def recalculate(self, duration: float) -> float:
        return duration


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack's 5xx retried after 10 and 20 ms, not slack_sdk's 0.5 s and 1 s plus up to 1 s of
    jitter each: for tests about what happens once retries run out, not about the wait.
    (test_reliability_slack.py's test_429_and_5xx_are_retried_by_the_client keeps the real one.)"""
    monkeypatch.setattr(
        retries, "BACKOFF", BackoffRetryIntervalCalculator(backoff_factor=0.01, jitter=_NoJitter())
    )


@pytest.fixture
def slack(make_slack: Callable[..., SlackHarness]) -> SlackHarness:
    return make_slack()


@pytest.fixture
def slack_http(make_slack: Callable[..., SlackHarness]) -> SlackHarness:
    return make_slack(http=True)
