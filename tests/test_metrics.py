"""Metrics as Prometheus sees them: scraped over real HTTP from the ASGI app on uvicorn."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from bot.metrics import (
    LATENCY_BUCKETS,
    count_feedback,
    metrics_app,
    observe_answer,
    set_index,
)


@dataclass(frozen=True)
class FakeAnswer:
    declined: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    """The metrics app routed at /metrics, as the HTTP server serves it, on a real port."""
    port = free_port()
    app = Starlette(routes=[Route("/metrics", metrics_app())])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/metrics"
    server.should_exit = True
    thread.join(timeout=10)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200 and response.url == url  # served there, not redirected
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_questions_declines_and_latency_are_counted(metrics_url: str) -> None:
    before = scrape(metrics_url)
    observe_answer("slack:mention", FakeAnswer(declined=False), 0.004)
    observe_answer("slack:mention", FakeAnswer(declined=True), 0.0008)
    observe_answer("slack:/ban-ask", FakeAnswer(declined=False), 1.5)
    after = scrape(metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ban_bot_questions_total", surface="slack:mention") == 2
    assert delta("ban_bot_questions_total", surface="slack:/ban-ask") == 1
    assert delta("ban_bot_declines_total", surface="slack:mention") == 1
    assert delta("ban_bot_declines_total", surface="slack:/ban-ask") == 0
    assert delta("ban_bot_answer_seconds_count") == 3
    assert delta("ban_bot_answer_seconds_sum") == pytest.approx(1.5048)
    # Each observation lands in the first bucket that holds it: 1 ms, 5 ms, 2 s.
    assert delta("ban_bot_answer_seconds_bucket", le="0.001") == 1
    assert delta("ban_bot_answer_seconds_bucket", le="0.0025") == 1
    assert delta("ban_bot_answer_seconds_bucket", le="0.005") == 2
    assert delta("ban_bot_answer_seconds_bucket", le="1.0") == 2
    assert delta("ban_bot_answer_seconds_bucket", le="2.0") == 3
    assert delta("ban_bot_answer_seconds_bucket", le="+Inf") == 3
    bounds = {
        float(labels[0][1])
        for (name, labels) in after
        if name == "ban_bot_answer_seconds_bucket" and labels[0][1] != "+Inf"
    }
    assert bounds == set(LATENCY_BUCKETS)


def test_feedback_votes_are_counted_and_both_exist_from_the_start(metrics_url: str) -> None:
    before = scrape(metrics_url)
    assert ("ban_bot_feedback_votes_total", (("vote", "down"),)) in before
    assert ("ban_bot_feedback_votes_total", (("vote", "up"),)) in before
    count_feedback("down")
    count_feedback("down")
    count_feedback("up")
    after = scrape(metrics_url)
    for vote, n in (("down", 2), ("up", 1)):
        key = ("ban_bot_feedback_votes_total", (("vote", vote),))
        assert after[key] - before[key] == n
    with pytest.raises(ValueError, match="vote must be 'up' or 'down'"):
        count_feedback("sideways")


def test_index_version_follows_reloads(metrics_url: str) -> None:
    set_index("20260101T000000-aaaaaa")
    set_index("20260102T000000-bbbbbb")
    samples = scrape(metrics_url)
    builds = [
        dict(labels)["build_id"] for (name, labels) in samples if name == "ban_bot_index_info"
    ]
    assert builds == ["20260102T000000-bbbbbb"]
    loaded = samples[("ban_bot_index_loaded_timestamp_seconds", ())]
    assert abs(loaded - time.time()) < 60


def test_process_metrics_are_served_too(metrics_url: str) -> None:
    samples = scrape(metrics_url)
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)
    assert any(name == "python_info" for name, _ in samples)
