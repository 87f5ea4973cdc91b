"""Load and validate the curated knowledge set (``knowledge/*.yaml``) into typed records.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CATEGORIES: tuple[str, ...] = (
    "deadline",
    "authority",
    "reason",
    "scope",
    "guidance",
    "alternative",
    "response",
    "history",
    "background",
    "misconception",
    "unconfirmed",
)
CATEGORY_LABELS: dict[str, str] = {
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
}
SourceStatus = Literal["primary", "secondary", "unconfirmed"]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Loader(yaml.SafeLoader):
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SourceModel(_Strict):
    title: str = Field(min_length=1)
    publisher: str = Field(min_length=1)
    date: str
    url: str | None = None
    status: SourceStatus

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str:
        return _normalise_date(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://\S+$", v):
            raise ValueError(f"url {v!r} is not an http(s) URL")
        return v


def _check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"id {v!r} must be lowercase letters, digits and hyphens")
    return v


Ident = Annotated[str, AfterValidator(_check_id)]


class EntryModel(_Strict):
    id: Ident
    category: str
    answer: str = Field(min_length=1)
    questions: list[str] = Field(min_length=1)
    sources: list[SourceModel] = Field(min_length=1)
    related: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"category {v!r} is not one of: {', '.join(CATEGORIES)}")
        return v

    @field_validator("questions")
    @classmethod
    def _questions(cls, v: list[str]) -> list[str]:
        if any(not q.strip() for q in v):
            raise ValueError("questions must not be empty")
        return v


class TimelineModel(_Strict):
    id: Ident
    date: str
    time: str | None = None
    zone: str | None = None
    title: str = Field(min_length=1)
    what: str = Field(min_length=1)
    key: bool = False
    keywords: list[str] = Field(default_factory=list)
    entry: str | None = None
    sources: list[SourceModel] = Field(min_length=1)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str:
        return _normalise_date(v)

    @model_validator(mode="after")
    def _time_zone(self) -> TimelineModel:
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


@dataclass(frozen=True)
class Source:
    """Where a fact comes from. ``date`` is ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``."""

    title: str
    publisher: str
    date: str
    url: str | None
    status: str


@dataclass(frozen=True)
class Entry:
    """One curated answer with the questions it answers and its sources."""

    id: str
    category: str
    answer: str
    questions: tuple[str, ...]
    sources: tuple[Source, ...]
    related: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    def texts(self) -> list[str]:
        """The texts embedded for this entry: the answer and each question phrasing."""
        return [self.answer, *self.questions]


@dataclass(frozen=True)
class TimelineEvent:
    """A dated event of the ban's timeline; ``time``/``zone`` pin an exact instant."""

    id: str
    date: str
    title: str
    what: str
    sources: tuple[Source, ...]
    time: str | None = None
    zone: str | None = None
    key: bool = False
    keywords: tuple[str, ...] = ()
    entry: str | None = None
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class KnowledgeSet:
    """All entries and timeline events, validated; ``fingerprint`` changes when any content does."""

    entries: tuple[Entry, ...]
    timeline: tuple[TimelineEvent, ...]
    fingerprint: str
    by_id: dict[str, Entry] = field(default_factory=dict, compare=False, repr=False)

    @property
    def categories(self) -> list[str]:
        present = {e.category for e in self.entries}
        return [c for c in CATEGORIES if c in present]

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [asdict(e) for e in self.entries],
            "timeline": [asdict(t) for t in self.timeline],
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KnowledgeSet:
        entries = tuple(_entry_from_dict(d) for d in data["entries"])
        timeline = tuple(_event_from_dict(d) for d in data["timeline"])
        return cls.build(entries, timeline, data["fingerprint"])

    @classmethod
    def build(
        cls, entries: tuple[Entry, ...], timeline: tuple[TimelineEvent, ...], fingerprint: str
    ) -> KnowledgeSet:
        return cls(entries, timeline, fingerprint, {e.id: e for e in entries})


def _sources(items: Iterable[dict[str, Any]]) -> tuple[Source, ...]:
    return tuple(Source(**s) for s in items)


def _entry_from_dict(d: dict[str, Any]) -> Entry:
    d = dict(d)
    return Entry(
        **{
            **d,
            "questions": tuple(d["questions"]),
            "sources": _sources(d["sources"]),
            "related": tuple(d.get("related", ())),
            "keywords": tuple(d.get("keywords", ())),
        }
    )


def _event_from_dict(d: dict[str, Any]) -> TimelineEvent:
    d = dict(d)
    return TimelineEvent(
        **{**d, "sources": _sources(d["sources"]), "keywords": tuple(d.get("keywords", ()))}
    )


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
        root = yaml.compose(text, Loader=yaml.SafeLoader)
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
    for key, model, sink in (
        ("entries", EntryModel, entries),
        ("timeline", TimelineModel, events),
    ):
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
            try:
                parsed = model.model_validate(raw)
            except ValidationError as e:
                raise KnowledgeError(f"{display}, {name} (line {line}): {_describe(e)}.") from None
            dumped = parsed.model_dump()
            if key == "entries":
                sink.append(_entry_from_dict({**dumped, "file": display, "line": line}))  # type: ignore[arg-type]
            else:
                sink.append(_event_from_dict({**dumped, "file": display, "line": line}))  # type: ignore[arg-type]
    return entries, events


def _fingerprint(entries: Iterable[Entry], events: Iterable[TimelineEvent]) -> str:
    # Content only: moving an entry to another file or line does not make the index stale.
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in {"file", "line"}}

    payload = {
        "entries": sorted((strip(asdict(e)) for e in entries), key=lambda d: d["id"]),
        "timeline": sorted((strip(asdict(t)) for t in events), key=lambda d: d["id"]),
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
    for event in events:
        if event.entry is not None and event.entry not in ids:
            raise KnowledgeError(
                f"{event.file}, timeline event {event.id!r} (line {event.line}): "
                f"entry {event.entry!r} does not exist."
            )
    if not entries:
        raise KnowledgeError(f"{directory}: the knowledge set has no entries.")
    return KnowledgeSet.build(tuple(entries), tuple(events), _fingerprint(entries, events))


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
