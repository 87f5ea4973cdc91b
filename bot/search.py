"""Query -> ranked entries: dense similarity over every embedded text plus a lexical signal.

Dense: FAISS inner product over normalised vectors (cosine); an entry scores the best of its
answer and question phrasings. Lexical: IDF-weighted coverage of the question's words by each
entry, with typo-tolerant matching to the knowledge vocabulary, so names and acronyms (OFAC,
BOD 17-01, UltraAV, EO 13873) count even where the small model blurs them, and words the
knowledge set has never seen lower the confidence. No formatting here.

Usage::

    searcher = Searcher(loaded.knowledge.entries, [r.entry_id for r in loaded.rows],
                        loaded.faiss_index)      # loaded = load_index(index_dir)
    hits = searcher.search(query_vector, "when do kaspresky updates stop", k=3)
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.knowledge import Entry

# How much the lexical coverage (0..1) adds to the cosine similarity, and how much the share of
# the question's words that the knowledge set has never seen takes away. Tuned on the eval set.
LEXICAL_WEIGHT = 0.4
UNKNOWN_WEIGHT = 0.1
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
# A sentence is set off for a follow-up only for words this rare that it shares with it (a word
# in one entry of 124 weighs about 4.4, in ten about 2.5, "kaspersky" about nothing).
SENTENCE_MATCH_WEIGHT = 2.0
STOPWORDS = frozenset(
    """a an and are as at be but by can did do does for from had has have how i if in is it its
    me my of on or our so that the their them there they this to was we were what when where which
    who whom why will with would you your about after before any anything all also am been being
    could should than then these those just get got us out up down still yet ok pls please hey
    hi yo hello thanks thank know tell""".split()  # noqa: SIM905
)


# The kinds of question a bare follow-up can ask ("why?", "when was that?", "how many?"): the
# first interrogative of a question names its kind. An entry's profile is the share of its own
# question phrasings of each kind, so what a follow-up asks for is matched against the knowledge
# set's own phrasings, not a list of topics.
_ASKS = (
    ("count", re.compile(r"\bhow (many|much)\b")),
    (
        "why",
        re.compile(
            r"\bwhy\b|\bhow come\b|\breasons?\b|\bjustification\b|\bon what grounds\b"
            r"|\bwhat(?:'s| is| was) (?:wrong|the problem)\b"
        ),
    ),
    ("when", re.compile(r"\bwhen\b|\bwhat (day|date|time|year|month)\b")),
    ("who", re.compile(r"\bwho(m|se)?\b|\bwhich (agency|agencies|company|companies|people)\b")),
    ("where", re.compile(r"\bwhere\b")),
)


def question_kind(text: str) -> str | None:
    """What a question asks for (``why``, ``when``, ``who``, ``count``, ``where``), by the first
    interrogative in it; ``None`` when it has none."""
    lowered = text.lower()
    found = [(m.start(), kind) for kind, rx in _ASKS if (m := rx.search(lowered))]
    return min(found)[1] if found else None


_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"( \d{1,2},)? \d{4}\b"
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b(?! ?(?:FR|CFR|U\.S\.C))|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred|thousand|million|billion)\b",
    re.I,
)


# Where curated text ends a sentence: a stop, then space, then a capital, a digit or an opening
# quote; not after an abbreviation the knowledge set writes ("12:00 a.m. EDT") or an initial.
_SENTENCE_BREAK = re.compile(r"[.!?][\"\u201d\u2019)]*\s+(?=[\"\u201c\u2018(]?[A-Z0-9])")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(])(?:a\.m|p\.m|U\.S|Mr|Ms|Mrs|Dr|St|No|Inc|Co|Jr|vs|e\.g|i\.e|[A-Z]"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.[\"\u201d\u2019)]*$"
)


def sentences(text: str) -> list[str]:
    """``text`` (curated prose) cut into its sentences, in order, each stripped.

    Usage: ``sentences("From 12:00 a.m. EDT on Sept. 29 it stopped. Why? Risk.")`` ->
    ``["From 12:00 a.m. EDT on Sept. 29 it stopped.", "Why?", "Risk."]``
    """
    out: list[str] = []
    start = 0
    for m in _SENTENCE_BREAK.finditer(text):
        if _ABBREVIATION.search(text[start : m.end()].rstrip()):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def answering_sentences(question: str, text: str) -> tuple[str, ...]:
    """The sentences of an answer's ``text`` that hold what ``question`` asks for: the dated
    ones for "when", those with a number for "how many"; none for other questions, or where
    none does or more than half do, since then nothing stands out.

    Usage: ``answering_sentences("by when?", entry_text)`` -> ``("... since September 29, 2024.",)``
    """
    kind = question_kind(question)
    if kind not in ("when", "count"):
        return ()
    found = sentences(text)
    if kind == "when":
        picked = [s for s in found if _DATE.search(s)]
    else:
        picked = [s for s in found if _NUMBER.search(_DATE.sub(" ", s))]
    return _standing_out(picked, found)


def _standing_out(picked: list[str], found: list[str]) -> tuple[str, ...]:
    """``picked`` of ``found`` where it stands out: some, at most half of them."""
    return tuple(picked) if 0 < len(picked) <= len(found) / 2 else ()


def _answers_to(entry: Entry) -> dict[str, float]:
    """What kinds of question an entry answers, 0..1 each (see ``Searcher.asked_for``)."""
    kinds = [question_kind(q) for q in entry.questions]
    share = {k: kinds.count(k) / len(kinds) for k in {k for k in kinds if k is not None}}
    text = entry.answer + " " + " ".join(p.text for p in entry.points)
    share["when"] = 1.0 if _DATE.search(text) else 0.0
    share["count"] = 1.0 if _NUMBER.search(_DATE.sub(" ", text)) else 0.0
    return share


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


@dataclass(frozen=True)
class Hit:
    """One ranked entry: combined score, and the dense and lexical parts it came from."""

    entry_id: str
    score: float
    dense: float
    lexical: float


def dense_entry_scores(
    similarities: np.ndarray, row_ids: np.ndarray, row_entry: np.ndarray, n_entries: int
) -> np.ndarray:
    """Best similarity per entry from FAISS results (rows not returned count as -1)."""
    scores = np.full(n_entries, -1.0, dtype=np.float32)
    valid = row_ids >= 0
    np.maximum.at(scores, row_entry[row_ids[valid]], similarities[valid])
    return scores


class LexicalScorer:
    """How much of a question's meaningful words an entry contains, weighted by rarity (IDF).

    Unlike a max-normalised BM25, the score is absolute: 1 means every word of the question
    appears in the entry, so it can take part in the decision to decline. Words are stemmed
    (Snowball), and a word the knowledge set does not know is matched to its nearest known word
    when that is a likely typo ("kaspresky" -> "kaspersky"); words that stay unknown count
    against every entry, which is how "pizza" or "Norton" lowers the confidence of any answer.
    """

    def __init__(self, entries: tuple[Entry, ...]) -> None:
        # A Snowball stemmer (PyStemmer's C one, or snowballstemmer's pure-Python fallback) keeps
        # its working state on the instance: two threads stemming at once get wrong stems or an
        # IndexError. Slack answers on several threads, so each thread has its own stemmer.
        self._local = threading.local()
        docs = [set(self._terms(e.search_text())) for e in entries]
        n = len(docs)
        df = Counter(t for d in docs for t in d)
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self.unknown_idf = math.log((n + 1) / 0.5)
        self.vocabulary = sorted(df)
        self._postings = {
            t: np.array([i for i, d in enumerate(docs) if t in d], dtype=np.int64) for t in df
        }
        self._n = n
        self._fixes: dict[str, str | None] = {}

    def _stemmer(self) -> Any:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import snowballstemmer  # PyStemmer's C implementation when installed

            stemmer = self._local.stemmer = snowballstemmer.stemmer("english")
        return stemmer

    def _terms(self, text: str) -> list[str]:
        return list(self._stemmer().stemWords(tokenize(text.replace("-", " "))))

    def _correct(self, term: str) -> str | None:
        if term in self.idf:
            return term
        if term in self._fixes:
            return self._fixes[term]
        fix: str | None = None
        if len(term) >= 4 and not term.isdigit():
            from rapidfuzz import fuzz, process

            match = process.extractOne(term, self.vocabulary, scorer=fuzz.ratio, score_cutoff=80)
            if match is not None:
                fix = str(match[0])
        if len(self._fixes) < 10_000:  # bounded: questions are user input
            self._fixes[term] = fix
        return fix

    def query_terms(self, text: str) -> tuple[list[str], int]:
        """The question's known terms (typos corrected, no repeats) and how many are unknown."""
        known: list[str] = []
        unknown: set[str] = set()
        for term in self._terms(text)[:64]:
            fixed = self._correct(term)
            if fixed is None:
                unknown.add(term)
            elif fixed not in known:
                known.append(fixed)
        return known, len(unknown)

    def scores(self, text: str) -> tuple[np.ndarray, float]:
        """Per-entry coverage in 0..1, and the share of the question's weight that is unknown."""
        known, n_unknown = self.query_terms(text)
        total = sum(self.idf[t] for t in known) + n_unknown * self.unknown_idf
        coverage = np.zeros(self._n, dtype=np.float32)
        if total <= 0:
            return coverage, 0.0
        for t in known:
            coverage[self._postings[t]] += self.idf[t]
        return coverage / total, n_unknown * self.unknown_idf / total


class Searcher:
    """Ranks entries for a query vector and its text."""

    def __init__(self, entries: tuple[Entry, ...], row_entry_ids: list[str], faiss_index: Any):
        self.entries = entries
        self._position = {e.id: i for i, e in enumerate(entries)}
        self.row_entry = np.array([self._position[r] for r in row_entry_ids], dtype=np.int64)
        self.index = faiss_index
        self.lexical = LexicalScorer(entries)
        # Every entry has several rows; asking FAISS for this many keeps each entry's best row.
        self._depth = min(int(faiss_index.ntotal), 64)
        self._kinds = {e.id: _answers_to(e) for e in entries}
        self._factual = np.array([e.factual for e in entries], dtype=bool)

    def asked_for(self, kind: str | None) -> dict[str, float]:
        """How well each entry answers a question of ``kind`` (0..1): for ``when`` and ``count``,
        whether its answer holds a date or a number; for the others, the share of its own
        question phrasings that ask that kind of question."""
        if kind is None:
            return {}
        return {e: p[kind] for e, p in self._kinds.items() if p.get(kind)}

    def matching_sentences(self, question: str, text: str) -> tuple[str, ...]:
        """The sentences of ``text`` that share the most of ``question``'s words, weighted by
        rarity (IDF): "who was the judge" in a paragraph about the lawsuits picks the one that
        names the judge. None where what they share is common (a total weight under
        ``SENTENCE_MATCH_WEIGHT``) or where more than half of the sentences tie."""
        asked = set(self.lexical.query_terms(question)[0])
        if not asked:
            return ()
        found = sentences(text)
        weights = [
            sum(self.lexical.idf[t] for t in asked.intersection(self.lexical.query_terms(s)[0]))
            for s in found
        ]
        best = max(weights, default=0.0)
        if best < SENTENCE_MATCH_WEIGHT:
            return ()
        return _standing_out([s for s, w in zip(found, weights, strict=True) if w == best], found)

    def dense_scores(self, query_vector: np.ndarray, *, depth: int | None = None) -> np.ndarray:
        q = np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32)
        sims, ids = self.index.search(q, depth or self._depth)
        return dense_entry_scores(sims[0], ids[0], self.row_entry, len(self.entries))

    def best_factual_dense(self, query_vector: np.ndarray) -> float:
        """The question's best dense similarity to an entry that states facts."""
        dense = self.dense_scores(query_vector)
        return float(dense[self._factual].max()) if self._factual.any() else -1.0

    def search(
        self,
        query_vector: np.ndarray,
        text: str,
        k: int = 3,
        *,
        prior: Mapping[str, float] | None = None,
        topic_vector: np.ndarray | None = None,
        topic_weight: float = 0.0,
    ) -> list[Hit]:
        """The ``k`` best entries for the question.

        A follow-up is read with the conversation's topic: ``topic_vector`` (the topic's
        embedding) takes ``topic_weight`` of the dense similarity, and ``prior`` adds to some
        entries' scores (those around the topic).
        """
        if topic_vector is None:
            dense = self.dense_scores(query_vector)
        else:  # every row: an entry far from one of the two must still get its real score
            depth = int(self.index.ntotal)
            dense = (1.0 - topic_weight) * self.dense_scores(query_vector, depth=depth)
            dense += topic_weight * self.dense_scores(topic_vector, depth=depth)
        lexical, unknown = self.lexical.scores(text)
        combined = dense + LEXICAL_WEIGHT * lexical - UNKNOWN_WEIGHT * unknown
        for entry_id, bonus in (prior or {}).items():
            i = self._position.get(entry_id)
            if i is not None:
                combined[i] += bonus
        order = np.argsort(-combined, kind="stable")[:k]
        return [
            Hit(self.entries[i].id, float(combined[i]), float(dense[i]), float(lexical[i]))
            for i in order
        ]
