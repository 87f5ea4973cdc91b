"""Prometheus metrics: questions, declines, answer latency, feedback votes and the live index.

The surfaces call the recording functions; HTTP mode mounts :func:`metrics_app` at ``/metrics``.
Everything goes to prometheus-client's default registry, so the process, platform and garbage
collector metrics it registers there are scraped too.

Usage::

    started = time.perf_counter()
    answer = engine.answer(question)
    observe_answer("slack:mention", answer, time.perf_counter() - started)
    count_feedback("down")
    set_index(engine.index.build_id)
    Starlette(routes=[Route("/metrics", metrics_app()), ...])   # HTTP mode
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info, make_asgi_app

__all__ = [
    "ANSWER_SECONDS",
    "DECLINES",
    "FEEDBACK",
    "INDEX",
    "INDEX_LOADED",
    "LATENCY_BUCKETS",
    "QUESTIONS",
    "count_feedback",
    "metrics_app",
    "observe_answer",
    "set_index",
]

# An answer takes a few milliseconds warm (ONNX encode + search) and up to a second or two when
# the machine is busy: fine steps at the bottom, a few coarse ones above.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

QUESTIONS = Counter("ban_bot_questions", "Questions answered or declined, by surface.", ["surface"])
DECLINES = Counter(
    "ban_bot_declines",
    "Questions declined (the sources do not cover them), by surface.",
    ["surface"],
)
FEEDBACK = Counter("ban_bot_feedback_votes", "Feedback clicks, by vote (up or down).", ["vote"])
# Both votes exist from the start at 0, so a rate over the first 👎 is not lost to a missing series.
for _vote in ("up", "down"):
    FEEDBACK.labels(vote=_vote)
ANSWER_SECONDS = Histogram(
    "ban_bot_answer_seconds",
    "Time to answer one question (encode, search, compose), in seconds.",
    buckets=LATENCY_BUCKETS,
)
INDEX = Info("ban_bot_index", "The index build the process answers from.")
INDEX_LOADED = Gauge(
    "ban_bot_index_loaded_timestamp_seconds", "When the live index build was loaded (Unix time)."
)


class _Answered(Protocol):
    """What ``observe_answer`` needs of an answer (``bot.answer.Answer`` has it)."""

    @property
    def declined(self) -> bool: ...


def observe_answer(surface: str, answer: _Answered, seconds: float) -> None:
    """Count one question on ``surface`` (and a decline, if it was one) and record its latency.

    Usage: ``observe_answer("slack:/ban-ask", answer, 0.004)``
    """
    QUESTIONS.labels(surface=surface).inc()
    if answer.declined:
        DECLINES.labels(surface=surface).inc()
    ANSWER_SECONDS.observe(seconds)


def count_feedback(vote: str) -> None:
    """Count one 👍 (``"up"``) or 👎 (``"down"``) click.

    Usage: ``count_feedback("down")``
    """
    if vote not in ("up", "down"):
        raise ValueError(f"vote must be 'up' or 'down', got {vote!r}")
    FEEDBACK.labels(vote=vote).inc()


def set_index(build_id: str) -> None:
    """Record the build now answering (call on load and on every reload).

    Usage: ``set_index(engine.index.build_id)``
    """
    INDEX.info({"build_id": build_id})
    INDEX_LOADED.set_to_current_time()


class _AsgiApp:
    """An ASGI app as an object: Starlette's ``Route`` wraps a plain function as a request handler
    but serves an object as is, so ``Route("/metrics", ...)`` answers on ``/metrics`` itself
    (``Mount`` would redirect it to ``/metrics/``)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app() -> Callable[..., Awaitable[None]]:
    """The ASGI app serving the metrics in Prometheus' text format, for ``GET /metrics``.

    Usage: ``Starlette(routes=[Route("/metrics", metrics_app())])``
    """
    return _AsgiApp(make_asgi_app(REGISTRY))
