"""``ban-bot report`` as a curator runs it: a real store, the real index, the real command (in
process, as click's CliRunner runs it)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import Ran, ban_bot

from bot.config import Settings
from bot.report import average_linkage
from bot.store import Store

NOW = dt.datetime.now(dt.UTC)
CANADA = [
    "Is Kaspersky banned in Canada too?",
    "  is kaspersky banned in   CANADA too?",  # the same phrasing: counted, shown once
    "does the kaspersky ban apply in canada",
    "kaspersky canada ban?",
]
REFUND_DOWNVOTED = [
    "Can I get a refund for my Kaspersky subscription?",
    "how do I get my money back for kaspersky",
]
REFUND_DECLINED = "refund for kaspersky license"
PIZZA = "what's the best pizza place near the office"


def run_report(args: list[str], data_dir: Path, index_dir: Path, **env: str) -> Ran:
    return ban_bot(
        ["report", "--index", str(index_dir), *args], env={"BAN_BOT_DATA_DIR": str(data_dir), **env}
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A store as a few weeks of Slack traffic leave it."""
    path = tmp_path / "curation-data"
    store = Store.open(Settings(data_dir=path))
    for days_ago, q in zip((1, 2, 4, 6), CANADA, strict=True):
        store.log_question(
            surface="slack:dm",
            question=q,
            entry_ids=["us-persons-abroad"],
            declined=True,
            score=0.31,
            user_id=f"U{days_ago}",
            now=NOW - dt.timedelta(days=days_ago),
        )
    for q in REFUND_DOWNVOTED:
        store.log_question(
            surface="slack:mention",
            question=q,
            entry_ids=["refunds-unknown"],
            declined=False,
            score=0.9,
            now=NOW - dt.timedelta(days=2),
        )
        store.record_feedback(
            user_id="U9",
            question=q,
            entry_ids=["refunds-unknown", "existing-subscriptions"],
            vote="down",
            now=NOW - dt.timedelta(days=2),
        )
    store.log_question(
        surface="slack:/ban-ask",
        question=REFUND_DECLINED,
        entry_ids=["refunds-unknown"],
        declined=True,
        now=NOW - dt.timedelta(days=5),
    )
    store.log_question(
        surface="slack:dm",
        question=PIZZA,
        entry_ids=["retailers-2017"],
        declined=True,
        now=NOW - dt.timedelta(days=40),
    )
    # Neither is for curators: an answer people liked, and a question answered without complaint.
    store.record_feedback(
        user_id="U3", question="When do updates stop?", entry_ids=["updates-cutoff"], vote="up"
    )
    store.log_question(
        surface="slack:dm",
        question="When do Kaspersky updates stop?",
        entry_ids=["updates-cutoff"],
        declined=False,
    )
    store.close()
    return path


def test_groups_counts_examples_and_nearest_entries(
    data_dir: Path, real_settings: Settings
) -> None:
    r = run_report(["--json"], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)
    assert [g["count"] for g in groups] == [4, 3, 1]  # most asked first
    canada, refund, pizza = groups
    for g in groups:
        assert set(g) == {
            "count",
            "declined",
            "downvoted",
            "examples",
            "nearest",
            "answered_with",
            "first_seen",
            "last_seen",
        }
        assert set(g["nearest"]) == {"entry_id", "similarity", "question"}
        assert g["nearest"]["entry_id"] in real_settings_entry_ids(real_settings)
        assert -1.0 <= g["nearest"]["similarity"] <= 1.0
        assert dt.datetime.fromisoformat(g["first_seen"]) <= dt.datetime.fromisoformat(
            g["last_seen"]
        )

    # Four declines, three distinct phrasings: the first one was asked twice, so it leads.
    assert (canada["declined"], canada["downvoted"]) == (4, 0)
    assert canada["examples"][0] == CANADA[0]
    assert sorted(canada["examples"]) == sorted([CANADA[0], CANADA[2], CANADA[3]])
    assert canada["answered_with"] == []

    # Two 👎 and a decline on refunds: the knowledge set has an entry saying none is confirmed.
    assert (refund["declined"], refund["downvoted"]) == (1, 2)
    assert sorted(refund["examples"]) == sorted([*REFUND_DOWNVOTED, REFUND_DECLINED])
    assert refund["nearest"]["entry_id"] == "refunds-unknown"
    assert refund["nearest"]["similarity"] > 0.9
    assert refund["answered_with"] == ["refunds-unknown"]

    # Nothing in the knowledge set is about pizza.
    assert (pizza["count"], pizza["examples"]) == (1, [PIZZA])
    assert pizza["nearest"]["similarity"] < 0.5


def real_settings_entry_ids(settings: Settings) -> set[str]:
    from bot.knowledge import load_knowledge

    return {e.id for e in load_knowledge(settings.knowledge_dir).entries}


def test_text_report_reads_as_a_list_of_what_to_add(
    data_dir: Path, real_settings: Settings
) -> None:
    r = run_report([], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == (
        "8 questions declined or answered with a 👎 in the 90 days kept, in 3 groups, "
        "most asked first:"
    )
    assert f"1. asked 4 times (4 declined), last {NOW - dt.timedelta(days=1):%Y-%m-%d}" in lines
    assert "2. asked 3 times (1 declined, 2 👎), last" in r.stdout
    assert f"   “{CANADA[0]}”" in lines
    assert "   nearest entry: refunds-unknown (similarity 0.9" in r.stdout
    assert "   👎 answers came from: refunds-unknown" in lines
    assert "3. asked once (1 declined)" in r.stdout


def test_since_limits_the_window(data_dir: Path, real_settings: Settings) -> None:
    r = run_report(["--since", "30", "--json"], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)
    assert [g["count"] for g in groups] == [4, 3]  # the 40-day-old pizza question is out
    r = run_report(["--since", "3", "--json"], data_dir, real_settings.index_dir)
    # Two Canada declines (1 and 2 days ago) and the two refund 👎 (2 days ago); equal counts
    # come most recent first.
    assert [(g["count"], g["declined"], g["downvoted"]) for g in json.loads(r.stdout)] == [
        (2, 2, 0),
        (2, 0, 2),
    ]


def test_threshold_sets_how_alike_a_group_is(data_dir: Path, real_settings: Settings) -> None:
    # The Canada phrasings are 0.90-0.92 alike and the refund ones 0.82-0.90: at 0.95 only the
    # two spellings of one phrasing stay together.
    r = run_report(["--threshold", "0.95", "--json"], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)
    assert [g["count"] for g in groups] == [2, 1, 1, 1, 1, 1, 1]
    assert groups[0]["examples"] == [CANADA[0]]
    r = run_report(["--threshold", "1"], data_dir, real_settings.index_dir)
    assert r.returncode == 2 and "'--threshold'" in r.stderr


def test_retention_prunes_before_reporting(data_dir: Path, real_settings: Settings) -> None:
    r = run_report(["--json"], data_dir, real_settings.index_dir, BAN_BOT_RETENTION_DAYS="30")
    assert r.returncode == 0, r.stderr
    assert PIZZA not in r.stdout
    store = Store.open(Settings(data_dir=data_dir))
    assert PIZZA not in [q.question for q in store.questions()]  # deleted, not just hidden
    store.close()


def test_nothing_to_report_is_one_line_without_an_index(tmp_path: Path) -> None:
    empty = tmp_path / "empty-data"
    no_index = tmp_path / "no-index"
    r = run_report(["--since", "7"], empty, no_index)
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout == "Nothing to report: no question was declined or got a 👎 in the last 7 days.\n"
    )
    r = run_report(["--json"], empty, no_index)
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_question_log_off_is_said(tmp_path: Path) -> None:
    r = run_report([], tmp_path / "d", tmp_path / "i", BAN_BOT_QUESTION_LOG="false")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Note: the question log is off (BAN_BOT_QUESTION_LOG=false), so declined questions are "
        "not recorded; only 👎 feedback is shown.",
        "Nothing to report: no question was declined or got a 👎 in the 90 days kept.",
    ]


def test_user_errors_are_one_clear_line(data_dir: Path, tmp_path: Path) -> None:
    r = run_report([], data_dir, tmp_path / "no-index")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'no-index'}: no index has been built yet; run `ban-bot index build`."
    ]
    r = run_report(["--since", "0"], data_dir, tmp_path / "no-index")
    assert r.returncode == 2 and "'--since': 0 is not in the range x>=1." in r.stderr


def test_average_linkage_groups_are_scipys_flat_clusters() -> None:
    """Similarity ``threshold`` is cut at cosine distance ``1 - threshold``, rows as numbered."""
    from scipy.cluster import hierarchy

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(12, 32))
    points = np.repeat(centres, rng.integers(1, 8, size=12), axis=0)
    points += rng.normal(scale=0.35, size=points.shape)
    vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    threshold = 0.75

    ours = average_linkage(vectors, [1] * len(vectors), threshold)
    tree = hierarchy.linkage(vectors.astype(np.float64), method="average", metric="cosine")
    labels = hierarchy.fcluster(tree, t=1 - threshold, criterion="distance")
    theirs = {frozenset(np.flatnonzero(labels == c).tolist()) for c in set(labels)}
    assert {frozenset(g) for g in ours} == theirs
    assert 1 < len(ours) < len(vectors)  # the case actually merges some and not all


def test_average_linkage_counts_duplicates_by_weight() -> None:
    """A phrasing asked five times weighs five times in its group's mean similarity."""
    # Unit vectors at these angles: cos(a, b) = 0.9, cos(b, c) = 0.7, cos(a, c) = 0.32.
    angles = np.radians([0.0, 25.84, 71.41])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    # a and b merge first (0.9); c then joins {a, b} at their mean similarity to it:
    # (0.32 + 0.7) / 2 = 0.51 when each was asked once, (0.32 + 5 * 0.7) / 6 = 0.64 when b was
    # asked five times.
    assert sorted(map(sorted, average_linkage(vectors, [1, 1, 1], 0.6))) == [[0, 1], [2]]
    assert sorted(map(sorted, average_linkage(vectors, [1, 5, 1], 0.6))) == [[0, 1, 2]]
    assert average_linkage(vectors[:0], [], 0.6) == []
