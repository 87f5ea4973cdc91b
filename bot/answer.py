"""The answer engine: question (and the conversation so far) -> ``Answer``.

Every surface (Slack events, slash commands, App Home, the local chat, the CLI) calls
``Engine.answer``; none of them decides what the answer is. An answer is composed from curated,
sourced entries, never generated: one entry's answer, or an overview's first sentence followed
by the points it draws from other entries, each with its own sources.

Usage::

    engine = Engine.load(Settings.from_env())
    first = engine.answer("when did kaspersky updates stop?")
    again = engine.answer("why?", context=[first.turn])   # answered about the previous topic
    print(again.text, [s.title for s in again.sources])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from bot.config import Settings
from bot.embedding import Embedder
from bot.index import IndexLoadError, LoadedIndex, load_index, verify_files
from bot.knowledge import Entry, KnowledgeSet, Source
from bot.search import Hit, Searcher, answering_sentences
from bot.text import clean_question
from bot.timeline import Clock, Timeline, annotate_dates, utc_now
from bot.turns import Turn

log = logging.getLogger(__name__)

# Calibrated on the tune halves of tests/eval/ and on tests/eval/dev/ (see README, "Answer
# quality"): below this combined score the best entry is more often wrong than right, so the bot
# declines instead. 0.52 misses nothing there that 0.55 gets, and declines fewer real questions.
DEFAULT_MIN_SCORE = 0.52
# A runner-up close to the best entry is offered as a follow-up.
FOLLOW_UP_MARGIN = 0.2
MAX_FOLLOW_UPS = 2
EXAMPLE_CATEGORIES = ("deadline", "scope", "alternative", "reason")

AnswerKind = Literal["answer", "overview", "decline", "out-of-scope", "smalltalk", "empty"]
FACTUAL_KINDS = frozenset({"answer", "overview"})

DECLINE_TEXT = (
    "I don't know: my sources don't cover that question. I can answer questions about the 2024 "
    "US ban on Kaspersky software: its deadlines, the reasons given, what is and isn't "
    "prohibited and for whom, Kaspersky's response and the alternatives."
)
EMPTY_TEXT = "Ask me a question about the 2024 US ban on Kaspersky software."
# A follow-up with nothing before it to follow ("why?", "what day was that?" in a new thread, or
# in a DM after the quiet gap): the question may well be covered, once it says what it is about.
NO_TOPIC_TEXT = (
    "I don't know what that refers to: ask me the whole question, and I'll answer it from my "
    "sources on the 2024 US ban on Kaspersky software."
)


@dataclass(frozen=True)
class FollowUp:
    """A related entry offered as a next question."""

    entry_id: str
    question: str


@dataclass(frozen=True)
class AnswerPart:
    """One sentence or paragraph of an answer and the sources behind it (plain text)."""

    text: str
    sources: tuple[Source, ...]
    entry_id: str


@dataclass(frozen=True)
class Answer:
    """What the bot says to a question.

    ``kind`` says what it is: an ``answer`` (one entry), an ``overview`` (a first sentence and
    points from other entries: ``parts``), a ``decline`` (nothing covers it), ``out-of-scope``
    (product support and the like: a curated decline), ``smalltalk`` (hello, thanks), or
    ``empty`` (nothing left to ask once markup is stripped). ``text`` is always the whole reply
    as plain text; ``parts`` carries the same text piece by piece with each piece's sources.
    """

    question: str
    kind: AnswerKind
    text: str
    score: float
    parts: tuple[AnswerPart, ...] = ()
    entry_ids: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    examples: tuple[str, ...] = ()
    category: str | None = None
    # True when the question was read as a follow-up of the conversation's previous topic;
    # ``topic`` then names that topic (the first phrasing of the entry the previous turn was
    # answered with: curated, never the user's text), and ``alone_differs`` says
    # whether the question read on its own gets another factual answer (surfaces offer to ask
    # it on its own, so a follow-up read the wrong way costs one click).
    in_context: bool = False
    topic: str | None = None
    alone_differs: bool = False
    # The sentences of ``text`` that hold what the question asks for (the dated ones for "when",
    # those with a number for "how many"; for a follow-up answered with the entry just shown,
    # those that share its rarest words): surfaces may set them off. The text is unchanged.
    emphasis: tuple[str, ...] = ()
    hits: tuple[Hit, ...] = field(default=(), repr=False)

    @property
    def answered(self) -> bool:
        """A factual answer (an entry or an overview)."""
        return self.kind in FACTUAL_KINDS

    @property
    def declined(self) -> bool:
        """No fact given: declined, out of scope, small talk or empty."""
        return not self.answered

    @property
    def entry_id(self) -> str | None:
        return self.entry_ids[0] if self.entry_ids and self.answered else None

    @property
    def turn(self) -> Turn:
        """This exchange as context for the next question."""
        return Turn(self.question, self.entry_ids[:1] if self.answered else ())

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON-lines record."""
        return {
            "question": self.question,
            "kind": self.kind,
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
        raise IndexLoadError(
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
        """Load and verify the live index (raises ``IndexLoadError`` with a clear message).

        The files are hashed on a second thread while the query encoder opens (hashing the
        90 MB model and opening it take about 0.1 s and 0.15 s; hashlib and onnxruntime both
        let go of the GIL): nothing is answered until both are done and the hashes match."""
        try:
            loaded = load_index(settings.index_dir, verify=False)
        except IndexLoadError:
            load_index(settings.index_dir)  # hashes first, to name the damaged file
            raise
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-index") as pool:
            verified = pool.submit(verify_files, loaded.path, loaded.manifest)
            try:
                engine = cls(settings, loaded, encoder=encoder, clock=clock)
            except Exception:
                verified.result()  # a damaged file explains the failure best
                raise
            verified.result()
        return engine

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

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        """Answer one question (Slack markup and control characters are stripped first).

        ``context`` is the conversation so far, oldest first: a follow-up that does not stand
        alone ("why?", "and on Macs?") is answered about the previous topic; a question that
        stands alone is answered as if asked fresh.
        """
        state = self._state
        q = clean_question(question)
        if not q:
            return self._empty()
        vector = state.encoder.encode([q])[0]
        standalone = self._compose(state, q, vector)
        previous = _topic(context)
        if previous is None:
            return self._finished(state, q, standalone, None)
        from bot.conversation import read_in_context

        read = read_in_context(self, state, q, vector, standalone, previous)
        return self._finished(state, q, read, previous)

    def answer_many(self, questions: Sequence[str]) -> list[Answer]:
        """Answer a batch of standalone questions with one encoder call (the CLI's JSON stream)."""
        state = self._state
        cleaned = [clean_question(q) for q in questions]
        todo = [q for q in cleaned if q]
        vectors = state.encoder.encode(todo) if todo else np.zeros((0, 1), dtype=np.float32)
        it = iter(vectors)
        return [
            self._finished(state, q, self._compose(state, q, next(it)), None)
            if q
            else self._empty()
            for q in cleaned
        ]

    def _finished(self, state: _State, question: str, answer: Answer, topic: Turn | None) -> Answer:
        """What an answer gets last, however it was read (``topic``: the turn it was read
        about, if any): a decline of a follow-up with nothing to follow asks for the whole
        question; an entry's answer names the sentences that hold what was asked (the dated or
        numbered ones for "when" and "how many"; for a follow-up answered with the entry just
        shown, those that share its rarest words)."""
        if answer.kind == "decline":
            from bot.conversation import needs_a_topic

            if topic is None and needs_a_topic(state.searcher, question):
                return replace(answer, text=NO_TOPIC_TEXT)
            return answer
        if answer.kind != "answer":
            return answer
        emphasis = answering_sentences(question, answer.text)
        just_shown = (
            answer.in_context and topic is not None and answer.entry_id == topic.entry_ids[0]
        )
        if not emphasis and just_shown:
            emphasis = state.searcher.matching_sentences(question, answer.text)
        return replace(answer, emphasis=emphasis) if emphasis else answer

    def _empty(self) -> Answer:
        # Nothing left to ask once markup is stripped: invite a question instead.
        return Answer(
            question="",
            kind="empty",
            text=EMPTY_TEXT,
            score=0.0,
            examples=tuple(self.example_questions(2)),
        )

    def _compose(
        self,
        state: _State,
        question: str,
        vector: np.ndarray,
        *,
        lexical_text: str | None = None,
        prior: Mapping[str, float] | None = None,
        topic_vector: np.ndarray | None = None,
        topic_weight: float = 0.0,
    ) -> Answer:
        hits = state.searcher.search(
            vector,
            lexical_text or question,
            k=3,
            prior=prior,
            topic_vector=topic_vector,
            topic_weight=topic_weight,
        )
        return self._from_hits(state, question, hits)

    def _from_hits(self, state: _State, question: str, hits: list[Hit]) -> Answer:
        top = hits[0]
        entry_ids = tuple(h.entry_id for h in hits)
        by_id = state.index.knowledge.by_id
        entry = by_id[top.entry_id]
        if top.score < self.min_score:
            return Answer(
                question=question,
                kind="decline",
                text=DECLINE_TEXT,
                score=top.score,
                entry_ids=entry_ids,
                examples=tuple(self.example_questions(2)),
                hits=tuple(hits),
            )
        if not entry.factual:
            kind: AnswerKind = "smalltalk" if entry.category == "smalltalk" else "out-of-scope"
            return Answer(
                question=question,
                kind=kind,
                text=entry.answer,
                score=top.score,
                entry_ids=entry_ids,
                examples=tuple(self.example_questions(3)) if entry.examples else (),
                category=entry.category,
                hits=tuple(hits),
            )
        today = self.clock().astimezone(_zone(self.settings.timezone)).date()
        parts = [AnswerPart(annotate_dates(entry.answer, today), entry.sources, entry.id)]
        for point in entry.points:
            source = by_id[point.entry]
            parts.append(AnswerPart(annotate_dates(point.text, today), source.sources, source.id))
        text = parts[0].text + "".join(f"\n• {p.text}" for p in parts[1:])
        return Answer(
            question=question,
            kind="overview" if entry.points else "answer",
            text=text,
            score=top.score,
            parts=tuple(parts),
            entry_ids=entry_ids,
            sources=_unique_sources(p.sources for p in parts),
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
        seen = {entry.id, *(p.entry for p in entry.points)}
        out: list[FollowUp] = []
        for i in ids:
            if i in seen or i not in by_id or not by_id[i].factual:
                continue
            seen.add(i)
            out.append(FollowUp(i, by_id[i].questions[0]))
            if len(out) == MAX_FOLLOW_UPS:
                break
        return tuple(out)


def _topic(context: Sequence[Turn]) -> Turn | None:
    """The latest turn that was answered with a fact: small talk and declines carry no topic."""
    for turn in reversed(context):
        if turn.entry_ids and turn.question:
            return turn
    return None


def _unique_sources(groups: Any) -> tuple[Source, ...]:
    out: list[Source] = []
    for sources in groups:
        for s in sources:
            if s not in out:
                out.append(s)
    return tuple(out)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
