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
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.knowledge import Entry

# How much the lexical coverage (0..1) adds to the cosine similarity, and how much the share of
# the question's words that the knowledge set has never seen takes away. Tuned on the eval set.
LEXICAL_WEIGHT = 0.4
UNKNOWN_WEIGHT = 0.1
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS = frozenset(
    """a an and are as at be but by can did do does for from had has have how i if in is it its
    me my of on or our so that the their them there they this to was we were what when where which
    who whom why will with would you your about after before any anything all also am been being
    could should than then these those just get got us out up down still yet ok pls please hey
    hi yo hello thanks thank know tell""".split()  # noqa: SIM905
)


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
        import snowballstemmer

        self._stem = snowballstemmer.stemmer("english").stemWord
        # A snowballstemmer stemmer keeps its working state on the instance: two threads stemming
        # at once raise IndexError or, worse, return wrong stems. Slack answers on several threads.
        self._stem_lock = threading.Lock()
        docs = [
            set(self._terms(" ".join([e.id, *e.questions, e.answer, *e.keywords]))) for e in entries
        ]
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

    def _terms(self, text: str) -> list[str]:
        words = tokenize(text.replace("-", " "))
        with self._stem_lock:
            return [self._stem(t) for t in words]

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
        position = {e.id: i for i, e in enumerate(entries)}
        self.row_entry = np.array([position[r] for r in row_entry_ids], dtype=np.int64)
        self.index = faiss_index
        self.lexical = LexicalScorer(entries)
        # Every entry has several rows; asking FAISS for this many keeps each entry's best row.
        self._depth = min(int(faiss_index.ntotal), 64)

    def dense_scores(self, query_vector: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32)
        sims, ids = self.index.search(q, self._depth)
        return dense_entry_scores(sims[0], ids[0], self.row_entry, len(self.entries))

    def search(self, query_vector: np.ndarray, text: str, k: int = 3) -> list[Hit]:
        dense = self.dense_scores(query_vector)
        lexical, unknown = self.lexical.scores(text)
        combined = dense + LEXICAL_WEIGHT * lexical - UNKNOWN_WEIGHT * unknown
        order = np.argsort(-combined, kind="stable")[:k]
        return [
            Hit(self.entries[i].id, float(combined[i]), float(dense[i]), float(lexical[i]))
            for i in order
        ]
