"""Query -> ranked entries: dense similarity over every embedded text plus a lexical signal.

Dense: FAISS inner product over normalised vectors (cosine); an entry scores the best of its
answer and question phrasings. Lexical: BM25 over each entry's words, with typo-tolerant matching
of query words to the knowledge vocabulary, so names and acronyms (OFAC, BOD 17-01, UltraAV,
EO 13873) count even where the small model blurs them. No formatting here.

Usage::

    searcher = Searcher(loaded_index)
    hits = searcher.search(query_vector, "when do kaspresky updates stop", k=3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.knowledge import Entry

# How much the lexical signal (scaled to 0..1 per query) adds to the cosine similarity.
LEXICAL_WEIGHT = 0.12
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
    """BM25 over entries, with query words corrected to the nearest knowledge word on a typo."""

    def __init__(self, entries: tuple[Entry, ...]) -> None:
        import bm25s

        docs = [
            tokenize(" ".join([e.id.replace("-", " "), *e.questions, e.answer, *e.keywords]))
            for e in entries
        ]
        self._bm25 = bm25s.BM25()
        self._bm25.index(docs, show_progress=False)
        self._n = len(docs)
        self.vocabulary = sorted({t for d in docs for t in d})
        self._vocab_set = frozenset(self.vocabulary)
        self._fixes: dict[str, str | None] = {}

    def _correct(self, token: str) -> str | None:
        if token in self._vocab_set:
            return token
        if token in self._fixes:
            return self._fixes[token]
        fix: str | None = None
        if len(token) >= 4 and not token.isdigit():
            from rapidfuzz import fuzz, process

            match = process.extractOne(token, self.vocabulary, scorer=fuzz.ratio, score_cutoff=80)
            if match is not None:
                fix = str(match[0])
        if len(self._fixes) < 10_000:
            self._fixes[token] = fix
        return fix

    def query_tokens(self, text: str) -> list[str]:
        out = []
        for tok in tokenize(text)[:64]:
            fixed = self._correct(tok)
            if fixed is not None:
                out.append(fixed)
        return out

    def scores(self, text: str) -> np.ndarray:
        """BM25 per entry, scaled so the best entry for this query scores 1 (all 0 if no match)."""
        tokens = self.query_tokens(text)
        if not tokens:
            return np.zeros(self._n, dtype=np.float32)
        raw = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        top = float(raw.max()) if raw.size else 0.0
        return raw / top if top > 0 else raw


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
        lexical = self.lexical.scores(text)
        combined = dense + LEXICAL_WEIGHT * lexical
        order = np.argsort(-combined, kind="stable")[:k]
        return [
            Hit(self.entries[i].id, float(combined[i]), float(dense[i]), float(lexical[i]))
            for i in order
        ]
