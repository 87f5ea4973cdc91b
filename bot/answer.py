"""The answer engine: question -> ``Answer`` (text, sources, follow-ups, confidence, declined).

Every surface (Slack events, slash commands, App Home, the local chat, the CLI) calls
``Engine.answer``; none of them decides what the answer is.

Usage::

    engine = Engine.load(Settings.from_env())
    answer = engine.answer("when do kaspersky updates stop?")
    print(answer.text, [s.title for s in answer.sources])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.config import Settings
from bot.embedding import Embedder
from bot.index import IndexProblem, LoadedIndex, load_index
from bot.knowledge import Entry, KnowledgeSet, Source
from bot.search import Hit, Searcher
from bot.text import clean_question
from bot.timeline import Clock, Timeline, annotate_dates, utc_now

log = logging.getLogger(__name__)

# Calibrated on tests/eval/cases.yaml (see README, "Answer quality"): below this combined score
# the best entry is more often wrong than right, so the bot declines instead.
DEFAULT_MIN_SCORE = 0.55
# A runner-up close to the best entry is offered as a follow-up.
FOLLOW_UP_MARGIN = 0.2
MAX_FOLLOW_UPS = 2
EXAMPLE_CATEGORIES = ("deadline", "scope", "alternative", "reason")


@dataclass(frozen=True)
class FollowUp:
    """A related entry offered as a next question."""

    entry_id: str
    question: str


@dataclass(frozen=True)
class Answer:
    """What the bot says to a question. ``declined`` answers carry the decline text instead."""

    question: str
    text: str
    declined: bool
    score: float
    entry_ids: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    category: str | None = None
    hits: tuple[Hit, ...] = field(default=(), repr=False)

    @property
    def answered(self) -> bool:
        return not self.declined

    @property
    def entry_id(self) -> str | None:
        return self.entry_ids[0] if self.entry_ids and not self.declined else None

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON-lines record."""
        return {
            "question": self.question,
            "answered": self.answered,
            "answer": self.text,
            "sources": [{"title": s.title, "url": s.url} for s in self.sources],
            "score": round(self.score, 4),
            "entry_ids": list(self.entry_ids),
        }


def load_query_encoder(loaded: LoadedIndex, threads: int) -> Embedder:
    """The build's torch-free ONNX encoder, or the torch model where the export was impossible."""
    if loaded.onnx_model is not None:
        from bot.onnx_encoder import OnnxEncoder

        return OnnxEncoder(loaded.onnx_model, loaded.onnx_tokenizer, threads=threads)
    kind = loaded.manifest.get("query_encoder", {}).get("kind")
    if kind != "torch":
        raise IndexProblem(
            f"{loaded.path}: built with a {kind!r} query encoder that this process does not have; "
            "run `ban-bot index build --force`."
        )
    from bot.embedding import TorchEmbedder, resolve_model

    return TorchEmbedder(resolve_model(loaded.manifest["model"]["name"]))


@dataclass(frozen=True)
class _State:
    """Everything that changes together when a new index is loaded."""

    index: LoadedIndex
    encoder: Embedder
    searcher: Searcher
    timeline: Timeline


class Engine:
    """Answers questions from a loaded index. Thread-safe; ``reload()`` swaps indexes live."""

    def __init__(
        self,
        settings: Settings,
        index: LoadedIndex,
        *,
        encoder: Embedder | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.min_score = settings.min_score if settings.min_score is not None else DEFAULT_MIN_SCORE
        self._lock = threading.Lock()
        self._state = self._prepare(index, encoder)

    @classmethod
    def load(
        cls, settings: Settings, *, clock: Clock = utc_now, encoder: Embedder | None = None
    ) -> Engine:
        """Load and verify the live index (raises ``IndexProblem`` with a clear message)."""
        return cls(settings, load_index(settings.index_dir), encoder=encoder, clock=clock)

    def _prepare(self, index: LoadedIndex, encoder: Embedder | None) -> _State:
        enc = encoder or load_query_encoder(index, self.settings.encoder_threads)
        searcher = Searcher(
            index.knowledge.entries, [r.entry_id for r in index.rows], index.faiss_index
        )
        return _State(index, enc, searcher, Timeline(index.knowledge.timeline))

    def reload(self) -> bool:
        """Load the live build if it changed; a broken one raises and the current one stays."""
        current = self._state
        loaded = load_index(self.settings.index_dir)
        if loaded.build_id == current.index.build_id:
            return False
        same_encoder = loaded.manifest.get("query_encoder") == current.index.manifest.get(
            "query_encoder"
        )
        state = self._prepare(loaded, current.encoder if same_encoder else None)
        with self._lock:
            self._state = state
        log.info("index reloaded: build %s", loaded.build_id)
        return True

    # Read-only views of the current state.
    @property
    def knowledge(self) -> KnowledgeSet:
        return self._state.index.knowledge

    @property
    def timeline(self) -> Timeline:
        return self._state.timeline

    @property
    def index(self) -> LoadedIndex:
        return self._state.index

    @property
    def encoder(self) -> Embedder:
        return self._state.encoder

    def example_questions(self, n: int = 3) -> list[str]:
        """A few questions the knowledge set answers well, for help and decline messages."""
        out: list[str] = []
        for category in EXAMPLE_CATEGORIES:
            for entry in self.knowledge.entries:
                if entry.category == category:
                    out.append(entry.questions[0])
                    break
        return out[:n]

    def decline_text(self, question: str) -> str:
        examples = self.example_questions(2)
        example = f' For example: "{examples[0]}"' if examples else ""
        lead = (
            "Ask me a question about the 2024 US ban on Kaspersky software."
            if not question
            else "I don't know: my sources don't cover that question."
        )
        return (
            f"{lead} I can answer questions about the ban's deadlines, the reasons given, what is "
            "and isn't prohibited, Kaspersky's response and the alternatives. Try /ban-deadlines "
            f"for the dates.{example}"
        )

    def answer(self, question: str) -> Answer:
        """Answer one question (Slack markup and control characters are stripped first)."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Sequence[str]) -> list[Answer]:
        """Answer a batch with one encoder call (the CLI's JSON stream)."""
        state = self._state
        cleaned = [clean_question(q) for q in questions]
        todo = [q for q in cleaned if q]
        vectors = state.encoder.encode(todo) if todo else np.zeros((0, 1), dtype=np.float32)
        out: list[Answer] = []
        it = iter(vectors)
        for q in cleaned:
            if not q:
                # Nothing left to ask once markup is stripped: invite a question instead.
                out.append(Answer(question=q, text=self.decline_text(""), declined=True, score=0.0))
            else:
                out.append(self._compose(state, q, next(it)))
        return out

    def _compose(self, state: _State, question: str, vector: np.ndarray) -> Answer:
        hits = state.searcher.search(vector, question, k=3)
        top = hits[0]
        entry_ids = tuple(h.entry_id for h in hits)
        if top.score < self.min_score:
            return Answer(
                question=question,
                text=self.decline_text(question),
                declined=True,
                score=top.score,
                entry_ids=entry_ids,
                hits=tuple(hits),
            )
        by_id = state.index.knowledge.by_id
        entry = by_id[top.entry_id]
        today = self.clock().astimezone(_zone(self.settings.timezone)).date()
        return Answer(
            question=question,
            text=annotate_dates(entry.answer, today),
            declined=False,
            score=top.score,
            entry_ids=entry_ids,
            sources=entry.sources,
            follow_ups=self._follow_ups(entry, hits, by_id),
            category=entry.category,
            hits=tuple(hits),
        )

    def _follow_ups(
        self, entry: Entry, hits: list[Hit], by_id: dict[str, Entry]
    ) -> tuple[FollowUp, ...]:
        ids: list[str] = [
            h.entry_id
            for h in hits[1:]
            if h.score >= self.min_score and h.score >= hits[0].score - FOLLOW_UP_MARGIN
        ]
        ids += list(entry.related)
        seen = {entry.id}
        out: list[FollowUp] = []
        for i in ids:
            if i in seen or i not in by_id:
                continue
            seen.add(i)
            out.append(FollowUp(i, by_id[i].questions[0]))
            if len(out) == MAX_FOLLOW_UPS:
                break
        return tuple(out)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
