"""Follow-ups: reading a question in the context of the conversation's previous topic.

A follow-up such as "why?", "how many people?" or "and on Macs?" does not stand alone. The
engine scores the question twice, alone and joined with the previous topic, and the joined
reading wins only when it is clearly the better one: the standalone reading wins ties, so a new
topic in the same thread is answered as if asked fresh. The one exception is a turn that points
back with a pronoun ("who signed it"): with no subject of its own, its joined reading may win
while scoring a little lower.

Usage::

    answer = engine.answer("why?", context=[Turn("when did updates stop?", ("updates-cutoff",))])
    answer.in_context  # True
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from bot.search import question_kind

if TYPE_CHECKING:
    from bot.answer import Answer, Engine, _State
    from bot.search import Searcher
    from bot.turns import Turn

# The reading in context must beat the standalone one by this much to win (ties: standalone).
CONTEXT_MARGIN = 0.02
# ... plus this share of how far the standalone answer clears the decline threshold: the more
# confident the question is on its own, the clearer the contextual reading must win.
MARGIN_SLOPE = 0.1
# A standalone answer this confident stands on its own, whatever the conversation was about.
STANDS_ALONE = 1.1
# The share of the dense similarity that comes from the topic rather than the follow-up itself.
TOPIC_WEIGHT = 0.6
# What a follow-up asks for ("why?", "what day was that?", "how many?") weighs for the entries
# that answer that kind of question (by their share of it, see Searcher.asked_for) and against
# those that do not answer it at all.
KIND_BONUS = 0.2
KIND_MISS = 0.2
BARE_KIND_BONUS = 0.4
# The entries the topic's entry names as related are a little more likely to be what comes next.
RELATED_BONUS = 0.0
# A follow-up must itself be about something the knowledge set covers: its own best dense
# similarity to a factual entry must reach this ("lol" after an answer is not a follow-up).
FOLLOW_UP_FLOOR = 0.2
# A question that points back at nothing ("that", "it", "they", "and ...?", "what about ...")
# and names this many subjects the knowledge set knows stands alone, when it has an answer.
SELF_CONTAINED_TERMS = 3
_PRONOUNS = r"it|its|that|this|those|these|they|them|their|he|him|his|she|her"
_REFERS_BACK = re.compile(
    rf"\b({_PRONOUNS}|there|then|same|also|too|else|either)\b"
    r"|^\W*(and|but|so|or|what about|how about|why|when|how come)\b",
    re.IGNORECASE,
)
# A turn that points back with a pronoun ("who signed it", "did commerce buy it") has no subject
# of its own: read alone, it answers about some other "it". Its reading in context needs this
# much less of a margin, and may win even while it scores a little lower.
PRONOUN_CREDIT = 0.1
_PRONOUN = re.compile(rf"\b({_PRONOUNS})\b", re.IGNORECASE)
# Small talk read with less confidence than this, that points back ("why didnt they ask me",
# "anything else drop it then"), may be a follow-up: the reading in context may win over it.
SMALLTALK_UNSURE = 0.7
# A short turn that points back and names at most this many known terms ("what about mac?", "why
# the vpn too", "does that apply on macs too") may be a follow-up even where, alone, it reads as
# product support; a longer request ("can you help me move my password manager vault somewhere
# else") stays declined.
SHORT_ASIDE_TERMS = 3
# Only this much of the previous question is used (it is user text, and only its topic counts).
MAX_TOPIC_CHARS = 300
# Tuned together on the tune half of tests/eval/conversations.yaml and on the development sets
# tests/eval/dev/conversations_dev*.yaml (see README, "Follow-ups").


def read_in_context(
    engine: Engine,
    state: _State,
    question: str,
    vector: np.ndarray,
    standalone: Answer,
    topic: Turn,
) -> Answer:
    """The better of ``standalone`` (the question read alone) and the question read about
    ``topic``, the conversation's latest answered turn.

    The topic is the user's earlier question and the first phrasing of the entry that answered
    it. Read in context, the dense similarity blends the follow-up with the topic, the lexical
    score reads both, and the prior leans to what the follow-up asks for and to the topic's
    related entries. Out-of-scope questions (but for short asides that point back, "what about
    mac?"), confident small talk and questions declined alone whose nearest entry is product
    support always stand alone.
    """
    refers_back = bool(_REFERS_BACK.search(question))
    if standalone.kind == "smalltalk" and not (refers_back and standalone.score < SMALLTALK_UNSURE):
        return standalone  # hello and thanks are never about the topic
    searcher = state.searcher
    known_terms = searcher.lexical.query_terms(question)[0]
    if standalone.kind == "out-of-scope" and not (
        refers_back and len(known_terms) <= SHORT_ASIDE_TERMS
    ):
        return standalone  # product support is never about the topic, but for a short aside
    if standalone.kind == "decline" and _nearest_is_out_of_scope(state, standalone):
        # Declined alone, and nearest to a product-support decline ("please write up the memo
        # for our clients"): asked mid-thread, it is still a request the bot does not serve.
        return standalone
    if standalone.kind != "decline" and standalone.score >= STANDS_ALONE:
        return standalone
    if (
        SELF_CONTAINED_TERMS
        and standalone.kind != "decline"
        and not refers_back
        and len(known_terms) >= SELF_CONTAINED_TERMS
    ):
        return standalone  # names its own subject and points at nothing before it
    entry = state.index.knowledge.by_id.get(topic.entry_ids[0])
    if entry is None:  # the entry is gone since (a new index): no topic to follow
        return standalone
    if searcher.best_factual_dense(vector) < FOLLOW_UP_FLOOR:
        return standalone
    about = f"{topic.question[:MAX_TOPIC_CHARS]} {entry.questions[0]}"
    answers = searcher.asked_for(question_kind(question))
    prior: dict[str, float] = {}
    if answers:
        # A bare "why?" or "when?" says nothing but what it asks for: that counts for more.
        bonus = KIND_BONUS if known_terms else BARE_KIND_BONUS
        for candidate in searcher.entries:
            share = answers.get(candidate.id, 0.0)
            prior[candidate.id] = bonus * share if share else -KIND_MISS
    for related in entry.related:
        prior[related] = prior.get(related, 0.0) + RELATED_BONUS
    contextual = engine._compose(
        state,
        question,
        vector,
        lexical_text=f"{about} {question}",
        prior=prior,
        topic_vector=state.encoder.encode([about])[0],
        topic_weight=TOPIC_WEIGHT,
    )
    margin = CONTEXT_MARGIN + MARGIN_SLOPE * max(0.0, standalone.score - engine.min_score)
    if _PRONOUN.search(question):
        margin -= PRONOUN_CREDIT
    if contextual.answered and contextual.score > standalone.score + margin:
        return replace(
            contextual,
            in_context=True,
            topic=entry.questions[0],
            alone_differs=standalone.answered and standalone.entry_id != contextual.entry_id,
        )
    return standalone


def needs_a_topic(searcher: Searcher, question: str) -> bool:
    """Whether ``question`` only makes sense after something: it points back ("why?", "what day
    was that?", "and on macs?") and names at most one thing the knowledge set knows and nothing
    it does not ("why is the sky blue" names its own subject)."""
    if not _REFERS_BACK.search(question):
        return False
    known, unknown = searcher.lexical.query_terms(question)
    return len(known) <= 1 and unknown == 0


def _nearest_is_out_of_scope(state: _State, answer: Answer) -> bool:
    """Whether the entry nearest to a declined question is a product-support (out-of-scope)
    decline rather than a fact or small talk."""
    if not answer.entry_ids:
        return False
    nearest = state.index.knowledge.by_id.get(answer.entry_ids[0])
    return nearest is not None and nearest.category == "out-of-scope"
