"""``ban-bot report`` as a curator runs it: a real store, the real index, the real command; the
experts' answers beside the groups, and the drafts ``--drafts`` writes, which the build refuses."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_runner import Ran, ban_bot

from bot.config import ROOT, Settings
from bot.knowledge import load_knowledge
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
    groups = json.loads(r.stdout)["groups"]
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
    groups = json.loads(r.stdout)["groups"]
    assert [g["count"] for g in groups] == [4, 3]  # the 40-day-old pizza question is out
    r = run_report(["--since", "3", "--json"], data_dir, real_settings.index_dir)
    # Two Canada declines (1 and 2 days ago) and the two refund 👎 (2 days ago); equal counts
    # come most recent first.
    assert [
        (g["count"], g["declined"], g["downvoted"]) for g in json.loads(r.stdout)["groups"]
    ] == [
        (2, 2, 0),
        (2, 0, 2),
    ]


def test_threshold_sets_how_alike_a_group_is(data_dir: Path, real_settings: Settings) -> None:
    # The Canada phrasings are 0.90-0.92 alike and the refund ones 0.82-0.90: at 0.95 only the
    # two spellings of one phrasing stay together.
    r = run_report(["--threshold", "0.95", "--json"], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)["groups"]
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
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"groups": [], "answered_by_experts": []}


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


# -- what the experts answered ---------------------------------------------------------------

EXPERT_TEXT = (
    "Yes for US persons anywhere, <@U0BOB> checked with Legal: see "
    "<https://www.bis.gov/kaspersky|BIS's Kaspersky page> &amp; ask <!channel> first. "
    "Canada itself has no ban."
)


def _answered_escalation(store: Store, question: str, ts: str, text: str) -> None:
    store.offer_escalation(
        channel="C0GENERAL",
        message_ts=ts,
        thread_ts=ts,
        user_id="U1",
        question=question,
        entry_ids=[],
        declined=True,
        now=NOW - dt.timedelta(days=1),
    )
    escalation = store.escalation("C0GENERAL", ts)
    assert escalation is not None and store.claim_escalation(escalation.id)
    store.escalation_sent(
        escalation.id, experts_channel="C0EXPERTS", experts_ts="9.1", permalink=None
    )
    store.record_expert_reply(
        escalation.id,
        channel="C0EXPERTS",
        message_ts=f"9.{ts[-1]}",
        user_id="U2",
        text="Ask Legal.",
    )
    reply_id = store.record_expert_reply(
        escalation.id, channel="C0EXPERTS", message_ts=f"9.{ts[-1]}1", user_id="U3", text=text
    )
    reply = store.expert_reply(reply_id or 0)
    assert reply is not None and store.mark_answer(reply) == "first"


@pytest.fixture
def answered_dir(data_dir: Path) -> Path:
    """The same traffic, and the experts' marked answer to one of the Canada questions."""
    store = Store.open(Settings(data_dir=data_dir))
    _answered_escalation(store, CANADA[2], "1710000000.000001", EXPERT_TEXT)
    store.close()
    return data_dir


def test_the_experts_answers_are_listed_beside_the_groups(
    answered_dir: Path, real_settings: Settings
) -> None:
    r = run_report(["--json"], answered_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [g["count"] for g in report["groups"]] == [4, 3, 1]  # the groups are as they were
    [answered] = report["answered_by_experts"]
    assert answered["question"] == CANADA[2] and answered["replies"] == 2
    # The reply as plain text: the link's URL kept for the curator, mentions gone.
    assert answered["answer"].startswith("Yes for US persons anywhere, checked with Legal")
    assert "BIS's Kaspersky page (https://www.bis.gov/kaspersky) & ask first" in answered["answer"]
    # Its phrasings: the question, then the other phrasings of its group.
    assert answered["phrasings"][0] == CANADA[2]
    assert set(answered["phrasings"][1:]) == {CANADA[0], CANADA[3]}
    assert answered["category"] not in {"overview", "smalltalk", "out-of-scope"}
    assert answered["draft_id"].startswith("draft-does-the-kaspersky-ban-apply-in-canada-")

    text = run_report([], answered_dir, real_settings.index_dir).stdout
    assert "1 questions answered by the experts in the 90 days kept" in text
    assert f"1. “{CANADA[2]}” (declined {NOW - dt.timedelta(days=1):%Y-%m-%d}" in text
    assert "   the experts' answer: “Yes for US persons anywhere" in text


def test_a_draft_is_refused_by_the_build_until_a_curator_sources_it(
    answered_dir: Path, real_settings: Settings, tmp_path: Path
) -> None:
    drafts = tmp_path / "drafts"
    r = run_report(["--drafts", str(drafts)], answered_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"wrote 1 draft to {drafts}"
    [draft] = drafts.glob("*.yaml")
    text = draft.read_text()
    assert text.startswith("# DRAFT from the experts' answer")
    [entry] = yaml.safe_load(text)["entries"]
    assert set(entry) == {"id", "category", "answer", "questions"}  # no sources
    assert draft.name == entry["id"] + ".yaml"

    # A curator copies it into the knowledge set: the build says why not, in one line.
    knowledge = tmp_path / "knowledge"
    shutil.copytree(real_settings.knowledge_dir, knowledge)
    shutil.copy(draft, knowledge)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "index",
            "build",
            "--knowledge",
            str(knowledge),
            "--index",
            str(tmp_path / "index"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
        timeout=300,
    )
    assert built.returncode == 1 and "Traceback" not in built.stderr
    [line] = built.stderr.strip().splitlines()
    assert line.startswith(f"Error: {knowledge / draft.name}, entry '{entry['id']}'")
    assert line.endswith("missing field 'sources' (every factual entry needs a source).")
    assert not (tmp_path / "index" / "CURRENT").exists()

    # Sourced, it is an entry like any other.
    entry["sources"] = [
        {"title": "Kaspersky", "publisher": "BIS", "date": "2024-06", "status": "primary"}
    ]
    (knowledge / draft.name).write_text(yaml.safe_dump({"entries": [entry]}))
    assert entry["id"] in load_knowledge(knowledge).by_id


def test_a_hostile_expert_reply_makes_a_draft_that_still_loads(
    data_dir: Path, real_settings: Settings, tmp_path: Path
) -> None:
    store = Store.open(Settings(data_dir=data_dir))
    hostile = "<!channel> `code` : - [x] {y: z}\n---\n\x00\u202e" + "long answer " * 4000
    _answered_escalation(
        store, "who approved the exception for our lab?", "1710000000.000002", hostile
    )
    store.close()
    drafts = tmp_path / "drafts"
    r = run_report(["--drafts", str(drafts), "--since", "7"], data_dir, real_settings.index_dir)
    assert r.returncode == 0, r.stderr
    [draft] = drafts.glob("*.yaml")
    [entry] = yaml.safe_load(draft.read_text())["entries"]
    assert len(entry["answer"]) <= 4000 and "\x00" not in entry["answer"]
    assert entry["questions"] == ["who approved the exception for our lab?"]
