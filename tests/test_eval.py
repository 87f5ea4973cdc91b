"""The eval suites, run by ``make test``: every threshold kept in tests/eval/ holds, and no answer
opens with a "Yes" or "No" that the question did not ask for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answer import Engine
from bot.evaluate import (
    CONVERSATIONS,
    DEFAULT_CASES,
    REAL_WORLD,
    SUITES,
    evaluate,
    half_of,
    holds,
    load_suite,
)
from bot.knowledge import KnowledgeError

pytestmark = pytest.mark.slow
YES_NO = re.compile(r"^\W*(yes|no)\s*[,.:;!—-]", re.IGNORECASE)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_suite_meets_its_thresholds(real_engine: Engine, path: Path) -> None:
    suite = load_suite(path)
    assert suite.thresholds or suite.held_out_thresholds, f"{path.name} keeps no thresholds"
    report = evaluate(real_engine, suite)
    assert report.passed, report.render(show_failures=True, half="tune")


def test_real_world_and_conversation_sets_are_judged_on_their_held_out_half() -> None:
    real, conv = load_suite(REAL_WORLD), load_suite(CONVERSATIONS)
    # The issues' goals stay in the repo as targets, whatever today's floors are.
    assert {"fact_accuracy", "decline_precision", "decline_recall"} <= set(real.held_out_targets)
    assert min(real.held_out_targets.values()) >= 0.90
    assert conv.held_out_targets["follow_up_fact_accuracy"] >= 0.90
    # Every target has a floor that fails the build, at today's held-out figures: below the
    # target while it is not met, at or above it once it is.
    for suite in (real, conv):
        for name in suite.held_out_targets:
            assert 0.8 <= suite.held_out_thresholds[name] <= 1.0, (suite.name, name)
    assert conv.held_out_thresholds["standalone_kept"] == 1.0
    # The existing set keeps today's figures as its floor.
    floor = load_suite(DEFAULT_CASES).thresholds
    assert floor["hit_at_1"] >= 0.881 and floor["fact_accuracy"] >= 0.881
    assert floor["decline_precision"] >= 0.941 and floor["decline_recall"] >= 0.889


def test_the_real_world_set_is_real() -> None:
    suite = load_suite(REAL_WORLD)
    assert len(suite.cases) >= 150
    declines = [c for c in suite.cases if c.decline]
    assert len(declines) >= 0.2 * len(suite.cases)
    public = [c for c in suite.cases if c.meta.get("origin") != "situational"]
    assert len(public) >= 120 and all(c.meta.get("url", "").startswith("http") for c in public)
    halves = {c.half for c in suite.cases}
    assert halves == {"tune", "held-out"}


def test_conversations_cover_follow_ups_switches_and_small_talk() -> None:
    suite = load_suite(CONVERSATIONS)
    assert len(suite.conversations) >= 50
    turns = [t for c in suite.conversations for t in c.turns]
    assert all(2 <= len(c.turns) <= 4 for c in suite.conversations)
    assert sum(t.context for t in turns) >= 50 and sum(t.smalltalk for t in turns) >= 10


def test_no_answer_opens_with_a_yes_or_no(real_engine: Engine) -> None:
    """An entry's opening is read as the answer to every question that reaches it: a "No, ..."
    written for one question answers another one wrongly. Every answer opens with its entry's
    answer, so no entry's answer may open with a yes or a no."""
    for entry in real_engine.knowledge.entries:
        assert not YES_NO.match(entry.answer), entry.id
    answer = real_engine.answer("is it illegal to keep using kaspersky at home?")
    assert answer.answered and answer.text.startswith(answer.parts[0].text)
    assert answer.parts[0].text.startswith(
        real_engine.knowledge.by_id[answer.entry_ids[0]].answer[:30]
    )


def test_halves_are_fixed_by_the_question() -> None:
    assert half_of("When do updates stop?") == half_of("  when do UPDATES   stop? ")
    halves = [half_of(f"question {i}") for i in range(200)]
    assert 70 < halves.count("tune") < 130


def test_facts_may_offer_alternatives() -> None:
    assert holds("OFAC designated 12 people", ["OFAC", ("twelve", "12")]) == []
    assert holds("OFAC acted", ["OFAC", ("twelve", "12")]) == [("twelve", "12")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [{q: hi}]", "needs either 'expect' ids or 'facts', or 'decline: true'"),
        ("cases: [{q: hi, decline: true, facts: [x]}]", "needs either"),
        ("cases: [{q: hi, facts: [{a: 1}]}]", "a fact is a string or a list of strings"),
        ("cases: [{q: hi, decline: true, colour: red}]", "unknown field 'colour'"),
        ("conversations: [{id: a, turns: [{q: hi}]}]", "exactly one of"),
        ("thresholds: {hit_at_9: 1}\ncases: []", "unknown threshold 'hit_at_9'"),
        ("- a list", "expected a mapping"),
    ],
)
def test_a_malformed_eval_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(KnowledgeError) as info:
        load_suite(path)
    assert message in str(info.value) and "bad.yaml" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_target_not_yet_met_is_reported_and_a_floor_fails(tmp_path: Path) -> None:
    """Floors fail ``make eval``; targets (an issue's goal) are only reported."""
    from bot.evaluate import EvalReport

    path = tmp_path / "suite.yaml"
    path.write_text(
        "held_out_targets: {fact_accuracy: 0.9}\n"
        "held_out_thresholds: {fact_accuracy: 0.8}\n"
        "cases: [{q: hi, facts: [x]}]\n"
    )
    suite = load_suite(path)
    assert suite.held_out_targets == {"fact_accuracy": 0.9}

    def report(score: float) -> EvalReport:
        scores = {"fact_accuracy": score}
        return EvalReport(
            suite="suite",
            metrics={"all": scores, "tune": scores, "held-out": scores},
            counts={"cases": 1},
            names=("fact_accuracy",),
            held_out_thresholds=suite.held_out_thresholds,
            held_out_targets=suite.held_out_targets,
        )

    between = report(0.85)
    assert between.passed and between.short_of_targets == [
        "suite: fact_accuracy (held-out) 0.850 < target 0.900"
    ]
    assert "held-out >= 0.80 ok; target 0.90 not yet" in between.render()
    assert report(0.95).short_of_targets == [] and "target 0.90 met" in report(0.95).render()
    below = report(0.7)
    assert not below.passed and below.below == ["suite: fact_accuracy (held-out) 0.700 < 0.800"]


DEV_SETS = sorted((Path(__file__).parent / "eval" / "dev").glob("*.yaml"))


@pytest.mark.parametrize("path", DEV_SETS, ids=lambda p: p.stem)
def test_each_development_set_loads_and_has_no_thresholds(path: Path) -> None:
    """Curators tune on these freely: each must load, and none may hold a floor or a target
    (only the suites' held-out halves are reported)."""
    suite = load_suite(path)
    assert suite.cases or suite.conversations
    assert not suite.thresholds and not suite.held_out_thresholds and not suite.held_out_targets
