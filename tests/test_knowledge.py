"""Knowledge validation: every bad input ends in one sentence naming the file and line or entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.config import ROOT
from bot.knowledge import CATEGORIES, KnowledgeError, load_knowledge

BRIEF = ROOT.parent / "shared" / "research" / "kaspersky-ban-facts.md"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _error(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_fixture_set_loads(mini_knowledge: Path) -> None:
    ks = load_knowledge(mini_knowledge)
    assert {e.id for e in ks.entries} >= {"updates-cutoff", "new-sales-ban"}
    assert ks.by_id["updates-cutoff"].sources[0].status == "secondary"
    assert ks.by_id["new-sales-ban"].line > 1
    assert len(ks.fingerprint) == 64


def test_yaml_syntax_error_names_file_and_line(mini_knowledge: Path) -> None:
    path = mini_knowledge / "mini.yaml"
    lines = path.read_text().splitlines()
    lines[5] = "    questions: [unclosed"
    path.write_text("\n".join(lines) + "\n")
    msg = _error(mini_knowledge)
    assert msg.startswith(str(path)) or "mini.yaml" in msg
    assert re.search(r"line \d+", msg)
    assert "YAML syntax error" in msg


def test_missing_field_names_file_and_entry(mini_knowledge: Path) -> None:
    path = mini_knowledge / "mini.yaml"
    data = yaml.safe_load(path.read_text())
    del data["entries"][1]["sources"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    msg = _error(mini_knowledge)
    assert "mini.yaml" in msg and "'new-sales-ban'" in msg and "missing field 'sources'" in msg
    assert re.search(r"line \d+", msg)


def test_bad_date_names_entry(mini_knowledge: Path) -> None:
    _edit(mini_knowledge / "mini.yaml", "date: 2024-06-21", "date: 2024-13-40")
    msg = _error(mini_knowledge)
    assert "'ofac-designations'" in msg and "2024-13-40" in msg and "not a valid date" in msg


def test_unknown_category_names_entry(mini_knowledge: Path) -> None:
    _edit(mini_knowledge / "mini.yaml", "category: authority", "category: gossip")
    msg = _error(mini_knowledge)
    assert "'ofac-designations'" in msg and "gossip" in msg and "deadline" in msg


def test_duplicate_id_across_files_names_both(mini_knowledge: Path) -> None:
    data = yaml.safe_load((mini_knowledge / "mini.yaml").read_text())
    (mini_knowledge / "zz-more.yaml").write_text(
        yaml.safe_dump({"entries": [data["entries"][0]]}, sort_keys=False)
    )
    msg = _error(mini_knowledge)
    assert "zz-more.yaml" in msg and "'updates-cutoff'" in msg and "duplicate id" in msg
    assert "mini.yaml" in msg


def test_unknown_field_and_dangling_related(mini_knowledge: Path) -> None:
    _edit(mini_knowledge / "mini.yaml", "    related: [new-sales-ban]", "    related: [nope]")
    assert "related id 'nope' does not exist" in _error(mini_knowledge)
    _edit(mini_knowledge / "mini.yaml", "    related: [nope]", "    relatd: [new-sales-ban]")
    assert "unknown field 'relatd'" in _error(mini_knowledge)


def test_time_needs_zone(mini_knowledge: Path) -> None:
    _edit(mini_knowledge / "mini.yaml", "    zone: America/New_York\n", "")
    assert "needs a zone" in _error(mini_knowledge)


def test_empty_folder_and_non_mapping(tmp_path: Path) -> None:
    assert "no .yaml files" in _error(tmp_path)
    (tmp_path / "a.yaml").write_text("- just\n- a list\n")
    assert "a.yaml, line 1" in _error(tmp_path)


def test_fingerprint_ignores_file_layout_but_not_content(mini_knowledge: Path) -> None:
    before = load_knowledge(mini_knowledge).fingerprint
    (mini_knowledge / "mini.yaml").rename(mini_knowledge / "renamed.yaml")
    assert load_knowledge(mini_knowledge).fingerprint == before
    _edit(mini_knowledge / "renamed.yaml", "Can I still buy", "Can I still purchase")
    assert load_knowledge(mini_knowledge).fingerprint != before


# The real knowledge set: its curation rules, checked on every run.


@pytest.fixture(scope="module")
def real() -> object:
    return load_knowledge(ROOT / "knowledge")


def test_real_set_covers_every_category(real) -> None:  # type: ignore[no-untyped-def]
    present = {e.category for e in real.entries}
    assert present >= set(CATEGORIES) - {"background"}
    assert len(real.entries) >= 40
    assert len(real.timeline) >= 14


def test_real_answers_are_short_and_sourced(real) -> None:  # type: ignore[no-untyped-def]
    for e in real.entries:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", e.answer.strip()) if s]
        assert 1 <= len(sentences) <= 4, (e.id, len(sentences))
        assert bool(e.sources) == e.factual, e.id  # small talk and declines state no fact
        assert len(e.questions) >= 3, e.id
        # Dates are written in full so that answers can say where they stand against today.
        assert not re.search(
            r"\b(Sept|Sep|Aug|Jul|Jun|Oct|Nov|Dec|Jan|Feb|Mar|Apr)\.? \d", e.answer
        )


@pytest.mark.skipif(
    not BRIEF.is_file(), reason="the research brief (../shared) is not beside the repo"
)
def test_real_urls_all_come_from_the_brief(real) -> None:  # type: ignore[no-untyped-def]
    brief = BRIEF.read_text()
    for item in [*real.entries, *real.timeline]:
        for s in item.sources:
            if s.url:
                assert s.url in brief, (item.id, s.url)
                assert not re.match(r"https?://\d+\.\d+\.\d+\.\d+", s.url), "a mirror's bare IP"


def test_real_unconfirmed_topics_say_so(real) -> None:  # type: ignore[no-untyped-def]
    unconfirmed = [e for e in real.entries if e.category == "unconfirmed"]
    assert len(unconfirmed) >= 4
    for e in unconfirmed:
        assert re.search(
            r"\b(no source|not confirm|unconfirmed|could not|no confirmed|not found)",
            e.answer,
            re.I,
        ), e.id


def test_an_entry_without_sources_is_refused(mini_knowledge: Path) -> None:
    data = yaml.safe_load((mini_knowledge / "mini.yaml").read_text())
    data["entries"][0]["sources"] = []
    (mini_knowledge / "mini.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    msg = _error(mini_knowledge)
    assert "'updates-cutoff'" in msg and "missing field 'sources'" in msg


def test_small_talk_takes_no_sources_and_overviews_need_points(mini_knowledge: Path) -> None:
    path = mini_knowledge / "mini.yaml"
    data = yaml.safe_load(path.read_text())
    hello = {"id": "hello", "category": "smalltalk", "answer": "Hi!", "questions": ["hi"]}
    data["entries"].append(hello)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_knowledge(mini_knowledge).by_id["hello"].factual is False
    hello["sources"] = data["entries"][0]["sources"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "a smalltalk reply states no fact" in _error(mini_knowledge)
    hello.pop("sources")
    overview = {
        **{k: data["entries"][0][k] for k in ("sources", "questions")},
        "id": "overview-dates",
        "category": "overview",
        "answer": "Two dates matter.",
        "points": [{"text": "Updates stopped.", "entry": "updates-cutoff"}],
    }
    data["entries"].append(overview)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "an overview needs at least 2 points" in _error(mini_knowledge)
    overview["points"].append({"text": "Sales stopped.", "entry": "nowhere"})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "point entry 'nowhere' does not exist" in _error(mini_knowledge)
    overview["points"][1]["entry"] = "new-sales-ban"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    ks = load_knowledge(mini_knowledge)
    assert [p.entry for p in ks.by_id["overview-dates"].points] == [
        "updates-cutoff",
        "new-sales-ban",
    ]


def test_where_an_entry_was_written_is_not_a_yaml_field(mini_knowledge: Path) -> None:
    _edit(
        mini_knowledge / "mini.yaml",
        "  - id: new-sales-ban\n",
        "  - id: new-sales-ban\n    line: 3\n",
    )
    assert "unknown field 'line'" in _error(mini_knowledge)


def test_the_knowledge_set_round_trips_through_the_index_json(mini_knowledge: Path) -> None:
    from bot.knowledge import KnowledgeSet

    ks = load_knowledge(mini_knowledge)
    again = KnowledgeSet.from_json(ks.to_json())
    assert again == ks and again.by_id.keys() == ks.by_id.keys()
