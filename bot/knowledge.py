"""Load and validate the curated knowledge set (``knowledge/*.yaml``) into typed records.

One frozen pydantic model per record serves both as the YAML schema and as the record the rest of
the bot reads; a mistake ends in one sentence naming the file and the line or entry.

Usage::

    ks = load_knowledge(Path("knowledge"))   # raises KnowledgeError with one clear sentence
    ks.by_id["updates-cutoff"].answer
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

# What each category answers, as the help message lists it. Factual categories come first;
# ``overview`` entries compose points of other entries; the last two are not facts at all.
CATEGORY_LABELS: dict[str, str] = {
    "overview": "overviews: what happened, the key dates, what it means for you",
    "situation": "your situation: home users, businesses, MSPs, government, contractors",
    "deadline": "deadlines and dates",
    "authority": "who acted and under what authority",
    "reason": "the reasons given",
    "scope": "what is and is not prohibited",
    "guidance": "what users were told to do",
    "alternative": "alternatives to Kaspersky",
    "response": "Kaspersky's response",
    "history": "the 2017-2022 history",
    "background": "background",
    "misconception": "common misconceptions",
    "unconfirmed": "what no source confirms",
    "smalltalk": "greetings and thanks",
    "out-of-scope": "what I do not cover (product support, other antivirus products)",
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_LABELS)
# Replies that state no fact, so they carry no sources: greetings and thanks, and the curated
# "that is product support, not the ban" declines.
UNSOURCED_CATEGORIES = frozenset({"smalltalk", "out-of-scope"})
# Listed in help and App Home: what the bot answers, not how it declines.
TOPIC_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in UNSOURCED_CATEGORIES)
SourceStatus = Literal["primary", "secondary", "unconfirmed"]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# libyaml's loader where PyYAML has it (the wheels do): parsing the knowledge set twice, for its
# data and for its line numbers, takes most of a no-op build with the pure-Python one.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that keeps dates as written, so a bad date gets our message, not a crash."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


class KnowledgeError(Exception):
    """Invalid knowledge: the message is one sentence naming the file and the line or entry."""


def _normalise_date(value: Any) -> str:
    """YAML gives ``date`` objects, ints or strings; keep a canonical ``YYYY[-MM[-DD]]`` string."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    m = _PARTIAL_DATE.match(text)
    if not m:
        raise ValueError(f"date {text!r} is not a valid date (use YYYY-MM-DD, YYYY-MM or YYYY)")
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        dt.date(year, int(month or 1), int(day or 1))
    except ValueError:
        raise ValueError(f"date {text!r} is not a valid date") from None
    return text


def _check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"id {v!r} must be lowercase letters, digits and hyphens")
    return v


Ident = Annotated[str, AfterValidator(_check_id)]
PartialDate = Annotated[str, BeforeValidator(_normalise_date)]
Text = Annotated[str, Field(min_length=1)]


class _Record(BaseModel):
    """Frozen, strict: an unknown field in the YAML is an error, and records never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Source(_Record):
    """Where a fact comes from. ``date`` is ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``."""

    title: Text
    publisher: Text
    date: PartialDate
    url: str | None = None
    status: SourceStatus

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://\S+$", v):
            raise ValueError(f"url {v!r} is not an http(s) URL")
        return v


class Point(_Record):
    """One sentence of an overview, drawn from (and sourced by) the entry that explains it."""

    text: Text
    entry: Ident


class Entry(_Record):
    """One curated answer with the questions it answers and its sources.

    An ``overview`` entry's ``answer`` is its direct first sentence, and its ``points`` are the two
    or three facts that follow, each sourced by the entry it names. ``file`` and ``line`` say
    where the entry was written (set by the loader, never in the YAML).
    """

    id: Ident
    category: str
    answer: Text
    questions: tuple[Text, ...] = Field(min_length=1)
    sources: tuple[Source, ...] = ()
    related: tuple[Ident, ...] = ()
    keywords: tuple[str, ...] = ()
    points: tuple[Point, ...] = ()
    examples: bool = False  # small talk: follow the reply with example questions
    file: str = ""
    line: int = 0

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"category {v!r} is not one of: {', '.join(CATEGORIES)}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Entry:
        if self.category in UNSOURCED_CATEGORIES:
            if self.sources:
                raise ValueError(f"a {self.category} reply states no fact, so it takes no sources")
        elif not self.sources:
            raise ValueError("missing field 'sources' (every factual entry needs a source)")
        if self.category == "overview" and len(self.points) < 2:
            raise ValueError("an overview needs at least 2 points (text and entry)")
        if self.points and self.category != "overview":
            raise ValueError("only overview entries have points")
        if self.examples and self.category != "smalltalk":
            raise ValueError("only smalltalk entries show examples")
        return self

    @property
    def factual(self) -> bool:
        """Whether the entry states facts (and so is an answer, not small talk or a decline)."""
        return self.category not in UNSOURCED_CATEGORIES

    def texts(self) -> list[str]:
        """The texts this entry is found by: its answer and each question phrasing. A reply
        that states no fact is found by its questions only: its words ("I cover the ban's
        deadlines...") would otherwise draw in the very questions it must not catch."""
        return [self.answer, *self.questions] if self.factual else list(self.questions)

    def search_text(self) -> str:
        """What the lexical scorer reads: the texts, the id's words and the keywords."""
        words = [self.id, *self.texts()] if self.factual else self.texts()
        return " ".join([*words, *self.keywords])


class TimelineEvent(_Record):
    """A dated event of the ban's timeline; ``time``/``zone`` pin an exact instant."""

    id: Ident
    date: PartialDate
    title: Text
    what: Text
    sources: tuple[Source, ...] = Field(min_length=1)
    time: str | None = None
    zone: str | None = None
    key: bool = False
    keywords: tuple[str, ...] = ()
    entry: Ident | None = None
    file: str = ""
    line: int = 0

    @model_validator(mode="after")
    def _time_zone(self) -> TimelineEvent:
        if self.time is not None:
            if not _TIME.match(self.time):
                raise ValueError(f"time {self.time!r} must be HH:MM (24-hour)")
            if self.zone is None:
                raise ValueError("time needs a zone (an IANA name such as America/New_York)")
            if len(self.date) != 10:
                raise ValueError("time needs a full YYYY-MM-DD date")
        if self.zone is not None:
            try:
                ZoneInfo(self.zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"zone {self.zone!r} is not a known time zone") from None
        return self


_WHERE = frozenset({"file", "line"})
# Part of the fingerprint: bump it when what an index holds for the same YAML changes (the texts
# embedded per entry), so that existing indexes are rebuilt rather than served stale.
SCHEMA_VERSION = 2


class KnowledgeSet(BaseModel):
    """All entries and timeline events, validated; ``fingerprint`` changes when any content does."""

    model_config = ConfigDict(frozen=True)

    entries: tuple[Entry, ...]
    timeline: tuple[TimelineEvent, ...]
    fingerprint: str

    _by_id: dict[str, Entry] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._by_id = {e.id: e for e in self.entries}

    @property
    def by_id(self) -> dict[str, Entry]:
        return self._by_id

    @property
    def categories(self) -> list[str]:
        """The topic categories present (small talk and out-of-scope replies are not topics)."""
        present = {e.category for e in self.entries}
        return [c for c in TOPIC_CATEGORIES if c in present]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KnowledgeSet:
        return cls.model_validate(data)


def _describe(err: ValidationError) -> str:
    """Turn pydantic's first error into a short clause such as "missing field 'sources'"."""
    first = err.errors()[0]
    loc = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in first["loc"]).replace(
        ".[", "["
    )
    kind = first["type"]
    if kind == "missing":
        return f"missing field {loc!r}"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{loc} {first.get('input')!r} is not allowed ({msg})"
    if kind == "value_error" and loc and loc.split(".")[-1] in msg:
        return msg
    if kind == "value_error" and not loc:
        return msg
    return f"{loc}: {msg}" if loc else msg


def _item_lines(text: str, key: str) -> list[int]:
    """1-based line of each item of the top-level list ``key`` (for error messages)."""
    try:
        root = yaml.compose(text, Loader=_BaseLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for k, v in root.value:
        if getattr(k, "value", None) == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _parse_file(path: Path, display: str) -> tuple[list[Entry], list[TimelineEvent]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise KnowledgeError(f"{display}: not valid UTF-8 text ({e.reason}).") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = e.problem or e.context or "invalid YAML"
        raise KnowledgeError(f"{display}{where}: YAML syntax error: {problem}.") from None
    except yaml.reader.ReaderError as e:  # its own message spans two lines
        code = e.character if isinstance(e.character, int) else ord(e.character[:1] or b"?")
        raise KnowledgeError(
            f"{display}: YAML does not allow the character U+{code:04X} (position {e.position})."
        ) from None
    except (yaml.YAMLError, ValueError) as e:
        raise KnowledgeError(f"{display}: YAML error: {' '.join(str(e).split())}.") from None
    if data is None:
        return [], []
    if not isinstance(data, dict):
        raise KnowledgeError(f"{display}, line 1: expected a mapping with 'entries' or 'timeline'.")
    unknown = set(data) - {"entries", "timeline"}
    if unknown:
        raise KnowledgeError(
            f"{display}: unknown top-level key {sorted(unknown)[0]!r} "
            "(expected 'entries' and/or 'timeline')."
        )
    entries: list[Entry] = []
    events: list[TimelineEvent] = []
    sinks: tuple[tuple[str, type[_Record], list[Any]], ...] = (
        ("entries", Entry, entries),
        ("timeline", TimelineEvent, events),
    )
    for key, model, sink in sinks:
        items = data.get(key) or []
        if not isinstance(items, list):
            raise KnowledgeError(f"{display}: '{key}' must be a list.")
        lines = _item_lines(text, key)
        for i, raw in enumerate(items):
            line = lines[i] if i < len(lines) else 0
            label = "entry" if key == "entries" else "timeline event"
            if not isinstance(raw, dict):
                raise KnowledgeError(f"{display}, line {line}: {label} #{i + 1} must be a mapping.")
            ident = raw.get("id")
            name = f"{label} {ident!r}" if ident else f"{label} #{i + 1} (no id)"
            reserved = sorted(_WHERE & set(raw))
            if reserved:
                raise KnowledgeError(
                    f"{display}, {name} (line {line}): unknown field {reserved[0]!r}."
                )
            try:
                sink.append(model.model_validate({**raw, "file": display, "line": line}))
            except ValidationError as e:
                raise KnowledgeError(f"{display}, {name} (line {line}): {_describe(e)}.") from None
    return entries, events


def _fingerprint(entries: Iterable[Entry], events: Iterable[TimelineEvent]) -> str:
    # Content only: moving an entry to another file or line does not make the index stale.
    def content(record: _Record) -> dict[str, Any]:
        return record.model_dump(mode="json", exclude=set(_WHERE))

    payload = {
        "schema": SCHEMA_VERSION,
        "entries": sorted((content(e) for e in entries), key=lambda d: d["id"]),
        "timeline": sorted((content(t) for t in events), key=lambda d: d["id"]),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def load_knowledge(directory: Path) -> KnowledgeSet:
    """Load every ``*.yaml``/``*.yml`` file in ``directory`` and validate the whole set."""
    directory = Path(directory)
    if not directory.is_dir():
        raise KnowledgeError(f"{directory}: knowledge folder not found.")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise KnowledgeError(f"{directory}: no .yaml files in the knowledge folder.")
    entries: list[Entry] = []
    events: list[TimelineEvent] = []
    for path in files:
        display = _display(path)
        file_entries, file_events = _parse_file(path, display)
        entries.extend(file_entries)
        events.extend(file_events)
    _check_ids(entries, "entry")
    _check_ids(events, "timeline event")
    ids = {e.id for e in entries}
    for entry in entries:
        for r in entry.related:
            if r not in ids:
                raise KnowledgeError(
                    f"{entry.file}, entry {entry.id!r} (line {entry.line}): "
                    f"related id {r!r} does not exist."
                )
        for point in entry.points:
            if point.entry not in ids:
                raise KnowledgeError(
                    f"{entry.file}, entry {entry.id!r} (line {entry.line}): "
                    f"point entry {point.entry!r} does not exist."
                )
    for event in events:
        if event.entry is not None and event.entry not in ids:
            raise KnowledgeError(
                f"{event.file}, timeline event {event.id!r} (line {event.line}): "
                f"entry {event.entry!r} does not exist."
            )
    if not entries:
        raise KnowledgeError(f"{directory}: the knowledge set has no entries.")
    return KnowledgeSet(
        entries=tuple(entries), timeline=tuple(events), fingerprint=_fingerprint(entries, events)
    )


def _check_ids(items: list[Entry] | list[TimelineEvent], label: str) -> None:
    seen: dict[str, Entry | TimelineEvent] = {}
    for item in items:
        first = seen.get(item.id)
        if first is not None:
            raise KnowledgeError(
                f"{item.file}, {label} {item.id!r} (line {item.line}): duplicate id, "
                f"already defined in {first.file} (line {first.line})."
            )
        seen[item.id] = item


def _display(path: Path) -> str:
    """A short, readable path for messages: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
