"""Malformed knowledge YAML, fuzzed with hypothesis: random bytes, random YAML documents of any
shape (wrong types, missing and unknown fields), YAML's own features (tags, anchors, aliases,
merge keys) and random edits of a valid file. ``load_knowledge`` either loads the set or raises
``KnowledgeError`` with one line naming the file; never any other exception."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.knowledge import KnowledgeError, load_knowledge

FIXTURE = Path(__file__).parent / "fixtures" / "knowledge" / "mini.yaml"
VALID = FIXTURE.read_text()
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FIELDS = [
    "entries",
    "timeline",
    "id",
    "category",
    "answer",
    "questions",
    "sources",
    "title",
    "publisher",
    "date",
    "url",
    "status",
    "related",
    "time",
    "zone",
    "what",
    "key",
    "keywords",
    "entry",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["deadline", "primary", "2024-06-24", "2024-13-45", "America/New_York"]),
    st.dates().map(str),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)
YAML_FEATURES = [
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!timestamp 2024-06-24",
    "!custom tag",
    "&anchor [1, 2]",
    "*undefined_alias",
    "<<: {id: x}",
    "? complex key",
    "{a: 1, a: 2}",
    ".nan",
    ".inf",
    "0x1F",
    "0o17",
    "1_000",
    "~",
    "'unterminated",
    '"bad \\escape"',
    "- [",
    "%YAML 1.1\n---",
    "---\n...\n---",
    "\t",
    "\x00",
    "\ufeff",
    "\u2028",
]


def _load(files: dict[str, bytes]) -> None:
    """Write ``files`` into a fresh folder and load it; the property every example must hold."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        try:
            load_knowledge(folder)
        except KnowledgeError as e:
            message = str(e)
            assert message and "\n" not in message and "\r" not in message, repr(message)
            named = [name for name in files if name in message]
            assert named or tmp in message, message


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _load({"broken.yaml": data})


@FUZZ
@given(document=documents)
def test_random_documents_of_any_shape(document: object) -> None:
    _load({"shapes.yaml": yaml.safe_dump(document, allow_unicode=True).encode()})


@FUZZ
@given(
    entry=st.dictionaries(st.sampled_from(FIELDS), documents, max_size=10),
    where=st.sampled_from(["entries", "timeline"]),
)
def test_entries_and_events_with_wrong_types_and_fields(entry: object, where: str) -> None:
    _load({"entry.yaml": yaml.safe_dump({where: [entry]}, allow_unicode=True).encode()})


def _mutations() -> st.SearchStrategy[Callable[[list[str]], list[str]]]:
    line = st.integers(min_value=0, max_value=VALID.count("\n"))
    insert = st.one_of(st.sampled_from(YAML_FEATURES), st.text(max_size=40))

    def delete(i: int) -> Callable[[list[str]], list[str]]:
        return lambda lines: lines[:i] + lines[i + 1 :]

    def duplicate(i: int) -> Callable[[list[str]], list[str]]:
        return lambda lines: lines[: i + 1] + lines[i:]

    def put(i: int, text: str) -> Callable[[list[str]], list[str]]:
        return lambda lines: [*lines[:i], text, *lines[i:]]

    def replace_value(i: int, text: str) -> Callable[[list[str]], list[str]]:
        def run(lines: list[str]) -> list[str]:
            if i < len(lines) and ":" in lines[i]:
                key = lines[i].split(":", 1)[0]
                lines = [*lines[:i], f"{key}: {text}", *lines[i + 1 :]]
            return lines

        return run

    def indent(i: int, by: int) -> Callable[[list[str]], list[str]]:
        return lambda lines: (
            [*lines[:i], " " * by + lines[i], *lines[i + 1 :]] if i < len(lines) else lines
        )

    return st.one_of(
        line.map(delete),
        line.map(duplicate),
        st.builds(put, line, insert),
        st.builds(replace_value, line, insert),
        st.builds(indent, line, st.integers(1, 5)),
    )


@FUZZ
@given(edits=st.lists(_mutations(), min_size=1, max_size=4))
def test_random_edits_of_a_valid_file(edits: list[Callable[[list[str]], list[str]]]) -> None:
    lines = VALID.splitlines()
    for edit in edits:
        lines = edit(lines)
    _load({"edited.yaml": "\n".join(lines).encode(), "other.yml": b"timeline: []\n"})


def test_an_alias_bomb_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    # "Billion laughs": nine levels of nine aliases.
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines.append("entries: *a9")
    shutil.copy(FIXTURE, tmp_path / "mini.yaml")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    _load({"bomb.yaml": (tmp_path / "bomb.yaml").read_bytes()})
