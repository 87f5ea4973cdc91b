"""Follow-ups: reading a question in the context of the conversation's previous topic.

A follow-up such as "why?", "how many people?" or "and on Macs?" does not stand alone. The
engine scores the question twice, alone and joined with the previous topic, and the joined
reading wins only when it is clearly the better one: the standalone reading wins ties, so a new
topic in the same thread is answered as if asked fresh.

Usage::

    answer = engine.answer("why?", context=[Turn("when did updates stop?", ("updates-cutoff",))])
    answer.in_context  # True
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from bot.search import question_kind

if TYPE_CHECKING:
    from bot.answer import Answer, Engine, _State
    from bot.turns import Turn

# The reading in context must beat the standalone one by this much to win (ties: standalone).
CONTEXT_MARGIN = 0.02
# A standalone answer this confident stands on its own, whatever the conversation was about.
STANDS_ALONE = 0.90
# What a follow-up's reading adds to the entries around the topic: the entry that answered it
# loses a little (a follow-up usually asks for something not yet said), the entries it names as
# related gain a little. Tuned on the tune half of tests/eval/conversations.yaml.
TOPIC_BONUS = -0.05
RELATED_BONUS = 0.05
# What a follow-up's kind of question ("why?", "when was that?") adds to the entries whose own
# phrasings ask the same (scaled by their share of such phrasings).
KIND_BONUS = 0.1
# The share of the dense similarity that comes from the topic rather than the follow-up itself.
TOPIC_WEIGHT = 0.7
# A question whose words are mostly unknown to the knowledge set ("what's the weather") is a new
# subject, not a follow-up, whatever came before.
MAX_UNKNOWN_SHARE = 0.5
# Only this much of the previous question is used (it is user text, and only its topic counts).
MAX_TOPIC_CHARS = 300
MODE = "blend"
LEX = "question"
JOIN = "both"


def read_in_context(
    engine: Engine,
    state: _State,
    question: str,
    vector: np.ndarray,
    standalone: Answer,
    topic: Turn,
) -> Answer:
    """The better of the standalone answer and the answer about ``topic``'s subject."""
    if standalone.kind != "decline" and standalone.score >= STANDS_ALONE:
        return standalone
    by_id = state.index.knowledge.by_id
    entry = by_id.get(topic.entry_ids[0])
    if entry is None:  # the entry is gone since (a new index): no topic to follow
        return standalone
    _, unknown = state.searcher.lexical.scores(question)
    if unknown > MAX_UNKNOWN_SHARE:
        return standalone
    if JOIN == "question":
        about = topic.question[:MAX_TOPIC_CHARS]
    elif JOIN == "entry":
        about = entry.questions[0]
    else:
        about = topic.question[:MAX_TOPIC_CHARS] + " " + entry.questions[0]
    joined = f"{about} {question}"
    prior = {
        e: KIND_BONUS * share
        for e, share in state.searcher.asked_for(question_kind(question)).items()
    }
    for r in entry.related:
        prior[r] = prior.get(r, 0.0) + RELATED_BONUS
    prior[entry.id] = prior.get(entry.id, 0.0) + TOPIC_BONUS
    if MODE == "blend":
        topic_vector = state.encoder.encode([about])[0]
        contextual = engine._compose(
            state,
            question,
            vector,
            lexical_text=joined if LEX == "joined" else question,
            prior=prior,
            topic_vector=topic_vector,
            topic_weight=TOPIC_WEIGHT,
        )
    else:
        joined_vector = state.encoder.encode([joined])[0]
        contextual = engine._compose(
            state, question, joined_vector, lexical_text=joined, prior=prior
        )
    if contextual.answered and contextual.score > standalone.score + CONTEXT_MARGIN:
        return replace(contextual, in_context=True)
    return standalone
