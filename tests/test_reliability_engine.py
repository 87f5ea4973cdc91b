"""The engine answers from several threads at once (Slack's answering pool) exactly as from one:
``make load`` found the shared Snowball stemmer failing (IndexError) and, worse, stemming wrongly
when two threads used it at once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.answer import Engine
from bot.bench import distinct_questions


def _key(answer: Any) -> tuple[object, ...]:
    return (answer.text, answer.entry_ids, round(answer.score, 5), answer.declined)


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch every 10 µs instead of every 5 ms, so races show in a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _at_once(work: Callable[[int], None], threads: int = 8) -> None:
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        start.wait()
        work(n)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)


def test_answers_from_eight_threads_at_once_equal_the_answers_from_one(
    real_engine: Engine, busy_switching: None
) -> None:
    questions = distinct_questions(real_engine.settings, 80)
    expected = {q: _key(real_engine.answer(q)) for q in questions}
    lexical = real_engine._state.searcher.lexical
    terms = {q: lexical.query_terms(q) for q in questions}
    errors: list[BaseException] = []
    wrong: list[str] = []

    def ask(n: int) -> None:
        for i in range(len(questions)):
            q = questions[(i + n * 10) % len(questions)]
            try:
                if _key(real_engine.answer(q)) != expected[q]:
                    wrong.append(q)
                for _ in range(20):  # the part that raced: stemming the question's words
                    if lexical.query_terms(q) != terms[q]:
                        wrong.append(q)
            except BaseException as e:
                errors.append(e)

    _at_once(ask)
    assert errors == [] and wrong == []
