"""The answer engine on the real knowledge set and the bundled model: answers, declines, hygiene."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.answer import MAX_FOLLOW_UPS, Answer, Engine
from bot.search import answering_sentences, question_kind, sentences
from bot.text import clean_question
from bot.timeline import annotate_dates, relative_phrase
from bot.turns import Turn

pytestmark = pytest.mark.slow


def test_deadline_answer_says_where_the_date_stands(real_engine: Engine) -> None:
    a = real_engine.answer("when do kaspersky updates stop?")
    assert a.answered
    # FIXED_NOW is November 26, 2026.
    assert "September 29, 2024 (2 years ago)" in a.text
    assert a.sources and all(s.title and s.publisher and s.date for s in a.sources)
    assert len(a.follow_ups) <= MAX_FOLLOW_UPS
    assert a.entry_id not in {f.entry_id for f in a.follow_ups}


def test_clock_is_injectable(real_settings) -> None:  # type: ignore[no-untyped-def]
    before = dt.datetime(2024, 9, 1, 16, 0, tzinfo=dt.UTC)  # noon in New York
    engine = Engine.load(real_settings, clock=lambda: before)
    a = engine.answer("when do kaspersky updates stop?")
    assert "September 29, 2024 (in 28 days)" in a.text


@pytest.mark.parametrize(
    "question",
    [
        "what's the best pizza place near the office?",
        "will it rain tomorrow in boston",
        "how do I reset my slack password",
        "who won the world cup in 1998",
        "recommend a good sci-fi novel",
    ],
)
def test_off_topic_is_declined(real_engine: Engine, question: str) -> None:
    a = real_engine.answer(question)
    assert a.declined and a.kind in {"decline", "out-of-scope"}, (question, a.entry_ids, a.score)
    assert not a.sources and not a.follow_ups
    # The engine names no surface's commands: Slack, the chat and the CLI add their own hints.
    assert "/ban-" not in a.text and "ban-bot " not in a.text


def test_a_decline_says_what_the_bot_covers_with_examples(real_engine: Engine) -> None:
    a = real_engine.answer("who wrote the novel Middlemarch?")
    assert a.kind == "decline" and "I don't know" in a.text and "deadlines" in a.text
    assert len(a.examples) == 2 and all(q.endswith("?") for q in a.examples)


@pytest.mark.parametrize(
    "question",
    [
        "I forgot my Kaspersky password and can't log in to My Kaspersky",
        "how do I cancel my UltraAV subscription",
        "which antivirus is the fastest on a gaming pc?",
        "Kaspersky keeps flagging my own program as a trojan, false positive?",
    ],
)
def test_product_support_is_declined_as_out_of_scope(real_engine: Engine, question: str) -> None:
    a = real_engine.answer(question)
    assert a.kind == "out-of-scope", (question, a.kind, a.entry_ids)
    assert "support" in a.text or "I cover" in a.text or "I can't help" in a.text
    assert "http" not in a.text and not a.sources  # no invented URLs, no facts


@pytest.mark.parametrize(
    "question",
    [
        "why did UltraAV install itself on my PC?",
        "can I still renew my Kaspersky subscription in the US?",
        "is Microsoft Defender enough once Kaspersky is gone?",
    ],
)
def test_near_domain_questions_the_ban_covers_are_answered(
    real_engine: Engine, question: str
) -> None:
    a = real_engine.answer(question)
    assert a.answered, (question, a.kind, a.entry_ids)


@pytest.mark.parametrize(
    "question",
    [
        "is it still ok to use kaspersky at home?",
        "am i allowed to keep kaspersky on my home laptop",
        "I have kaspersky at home, can I keep it?",
    ],
)
def test_a_home_user_asking_to_keep_kaspersky_is_told_it_is_legal_but_unprotected(
    real_engine: Engine, question: str
) -> None:
    """The most common question, not the federal rule: NDAA section 1634's phrasings ("what
    about my own?") used to pull it, and the answer was about federal agencies."""
    a = real_engine.answer(question)
    assert a.answered and a.entry_ids[0] != "ndaa-section-1634", (question, a.entry_ids)
    assert "not illegal" in a.text and "September 29, 2024" in a.text, (question, a.text)


@pytest.mark.parametrize(
    ("question", "words"),
    [("hi", "ban-bot"), ("thanks!", "welcome"), ("who are you?", "ban-bot")],
)
def test_small_talk_gets_a_friendly_reply(real_engine: Engine, question: str, words: str) -> None:
    a = real_engine.answer(question)
    assert a.kind == "smalltalk" and words in a.text and "I don't know" not in a.text
    assert not a.sources


def test_greeting_offers_example_questions(real_engine: Engine) -> None:
    assert len(real_engine.answer("hello").examples) >= 2
    assert not real_engine.answer("thanks").examples


def test_unconfirmed_topics_answer_no_confirmed_information(real_engine: Engine) -> None:
    a = real_engine.answer("can I get a refund for my kaspersky subscription?")
    assert a.answered and a.category == "unconfirmed"


@pytest.mark.parametrize(
    "raw",
    ["", "   \n\t ", "\x00\x01\x02", "<@U123ABC>", "<!channel> <!here>"],
)
def test_empty_questions_get_a_prompt_not_a_crash(real_engine: Engine, raw: str) -> None:
    a = real_engine.answer(raw)
    assert a.kind == "empty" and a.declined and "Ask me a question" in a.text


def test_huge_and_marked_up_questions(real_engine: Engine) -> None:
    huge = "when do kaspersky updates stop? " + "x" * 50_000
    assert real_engine.answer(huge).answered
    marked = "<@U024BE7LH> <!channel> when do <https://example.com|kaspersky> updates stop?\x07"
    a = real_engine.answer(marked)
    assert a.answered and "September 29, 2024" in a.text
    assert a.question == "when do kaspersky updates stop?"


def test_answer_many_matches_answer(real_engine: Engine) -> None:
    questions = ["who is UltraAV?", "", "was eugene kaspersky sanctioned", "pizza?"]
    batch = real_engine.answer_many(questions)
    single = [real_engine.answer(q) for q in questions]
    for a, b in zip(batch, single, strict=True):
        assert (a.kind, a.entry_ids, a.text) == (b.kind, b.entry_ids, b.text)
        assert abs(a.score - b.score) < 1e-4


def test_json_record_shape(real_engine: Engine) -> None:
    record = real_engine.answer("what is OFAC's role?").to_json()
    assert set(record) == {
        "question",
        "kind",
        "answered",
        "answer",
        "sources",
        "score",
        "entry_ids",
    }
    assert all(set(s) == {"title", "url"} for s in record["sources"])
    assert isinstance(record["score"], float)


def test_dense_retrieval_matches_brute_force(real_engine: Engine) -> None:
    """FAISS's entry scores equal an exact numpy search over every stored vector."""
    index = real_engine.index
    row_entry = [r.entry_id for r in index.rows]
    ids = [e.id for e in index.knowledge.entries]
    questions = [q for e in index.knowledge.entries[:20] for q in e.questions[:1]] + [
        "kaspresky updaets",
        "PIZZA",
        "ofac",
        "BOD 17-01",
        "what did pango do",
    ]
    for q in questions:
        v = real_engine.encoder.encode([q])[0]
        faiss_scores = real_engine._state.searcher.dense_scores(v)
        sims = index.embeddings @ v
        exact = np.full(len(ids), -1.0)
        for sim, entry_id in zip(sims, row_entry, strict=True):
            i = ids.index(entry_id)
            exact[i] = max(exact[i], sim)
        top = np.argsort(-exact)[:10]
        assert np.allclose(faiss_scores[top], exact[top], atol=1e-5), q
        assert int(np.argmax(faiss_scores)) == int(np.argmax(exact)), q


def test_typos_are_corrected_lexically(real_engine: Engine) -> None:
    lexical = real_engine._state.searcher.lexical
    known, unknown = lexical.query_terms("kaspresky updaets pizza")
    assert known == lexical.query_terms("kaspersky updates")[0] and unknown == 1


def test_relative_phrases() -> None:
    today = dt.date(2026, 11, 26)
    assert relative_phrase(dt.date(2024, 9, 29), today) == "2 years ago"
    assert relative_phrase(dt.date(2026, 11, 26), today) == "today"
    assert relative_phrase(dt.date(2026, 12, 1), today) == "in 5 days"
    assert relative_phrase(dt.date(2026, 10, 26), today) == "1 month ago"
    assert annotate_dates("on June 20, 2024.", today) == "on June 20, 2024 (2 years ago)."
    assert annotate_dates("on February 30, 2024", today) == "on February 30, 2024"


def test_clean_question() -> None:
    assert clean_question("<@U1> hi <#C1|general> <mailto:a@b.c|mail> &lt;b&gt;") == (
        "hi #general mail <b>"
    )
    assert len(clean_question("é" * 100_000)) == 2000


def test_declined_answer_type() -> None:
    a = Answer(question="q", kind="decline", text="t", score=0.1, entry_ids=("x",))
    assert not a.answered and a.declined and a.entry_id is None
    assert a.turn == Turn("q", ())  # a decline gives the conversation no topic


def test_an_overview_is_composed_of_sourced_points(real_engine: Engine) -> None:
    a = real_engine.answer("which dates matter in this ban?")
    assert a.kind == "overview", (a.kind, a.entry_ids)
    assert len(a.parts) >= 3 and all(p.sources for p in a.parts)
    assert a.text.count("\n• ") == len(a.parts) - 1
    assert "July 20, 2024" in a.text and "September 29, 2024" in a.text
    # Every point's sources are the sources of the entry it is drawn from.
    by_id = real_engine.knowledge.by_id
    assert all(p.sources == by_id[p.entry_id].sources for p in a.parts[1:])
    assert set(a.sources) == {s for p in a.parts for s in p.sources}
    assert len(a.text) < 1500


def test_a_follow_up_is_answered_about_the_previous_topic(real_engine: Engine) -> None:
    first = real_engine.answer("which US agency sanctioned Kaspersky's executives?")
    assert "OFAC" in first.text
    how_many = real_engine.answer("how many people?", context=[first.turn])
    assert how_many.answered and how_many.in_context and "12" in how_many.text
    alone = real_engine.answer("how many people?")
    assert "12" not in alone.text or not alone.answered
    # What it was read about, and that asking it on its own would answer something else.
    assert how_many.topic == real_engine.knowledge.by_id[first.entry_ids[0]].questions[0]
    assert how_many.alone_differs and alone.answered and alone.entry_id != how_many.entry_id
    assert alone.topic is None and not alone.alone_differs


def test_a_follow_up_that_means_nothing_alone_offers_no_other_reading(
    real_engine: Engine,
) -> None:
    first = real_engine.answer("when did kaspersky updates stop?")
    why = real_engine.answer("why?", context=[first.turn])
    assert (
        why.in_context and why.topic == real_engine.knowledge.by_id["updates-cutoff"].questions[0]
    )
    assert real_engine.answer("why?").declined and not why.alone_differs


def test_why_after_an_answer_gives_the_reasons(real_engine: Engine) -> None:
    first = real_engine.answer("when did kaspersky updates stop?")
    why = real_engine.answer("why?", context=[first.turn])
    assert why.answered and why.in_context, (why.kind, why.entry_ids)
    # The reasons for the ban, or why BIS let updates run until then: both answer "why?" here.
    assert any(w in why.text for w in ("Russia", "national security", "minimize disruption"))


def test_a_bare_why_after_a_date_asks_for_the_reason_not_the_date_again(
    real_engine: Engine,
) -> None:
    first = real_engine.answer("ok, and when did they stop selling it?")
    assert "July 20, 2024" in first.text
    why = real_engine.answer("why", context=[first.turn])
    assert why.answered and why.in_context, (why.kind, why.entry_ids)
    assert any(w in why.text for w in ("national security", "Russian government")), why.entry_ids


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("why?", "why"),
        ("how come?", "why"),
        ("what's the reason", "why"),
        ("on what grounds did they do it", "why"),
        ("what's wrong with it", "why"),
        ("what day was that?", "when"),
        ("how many people?", "count"),
        ("and on macs?", None),
    ],
)
def test_what_a_follow_up_asks_for(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_a_new_topic_in_the_thread_is_answered_as_if_asked_fresh(real_engine: Engine) -> None:
    first = real_engine.answer("who was sanctioned by OFAC?")
    question = "when do kaspersky updates stop?"
    switched = real_engine.answer(question, context=[first.turn])
    fresh = real_engine.answer(question)
    assert not switched.in_context
    assert (switched.entry_ids, switched.text) == (fresh.entry_ids, fresh.text)


def test_off_topic_after_a_topic_is_not_pulled_into_it(real_engine: Engine) -> None:
    first = real_engine.answer("when do kaspersky updates stop?")
    weather = real_engine.answer("what's the weather like in boston today?", context=[first.turn])
    assert weather.declined and not weather.in_context


@pytest.mark.parametrize(
    ("topic", "follow_up"),
    [
        ("did kaspersky warn people before it replaced itself with ultraav", "why wasnt i asked"),
        ("when did the fcc add kaspersky to the covered list", "anything else added then"),
    ],
)
def test_a_follow_up_that_alone_reads_as_unsure_small_talk_is_answered_in_context(
    real_engine: Engine, topic: str, follow_up: str
) -> None:
    first = real_engine.answer(topic)
    alone = real_engine.answer(follow_up)
    assert alone.declined  # alone: small talk or "I don't know", not a fact
    in_thread = real_engine.answer(follow_up, context=[first.turn])
    assert in_thread.in_context and in_thread.answered
    assert in_thread.entry_ids[0] == first.entry_ids[0]


def test_a_short_aside_that_alone_reads_as_product_support_is_answered_in_context(
    real_engine: Engine,
) -> None:
    first = real_engine.answer("when did kaspersky updates stop")
    assert real_engine.answer("what about on mac?").kind == "out-of-scope"
    aside = real_engine.answer("what about on mac?", context=[first.turn])
    assert aside.in_context and aside.answered and "mac" in aside.text.lower()
    # A support request that points back is still declined.
    uninstall = real_engine.answer("can you help me uninstall it", context=[first.turn])
    assert uninstall.kind == "out-of-scope" and not uninstall.in_context


@pytest.mark.parametrize(
    "request_",
    ["please write up the memo for our clients", "can you move my saved logins out of it for me"],
)
def test_a_product_support_request_mid_thread_is_still_declined(
    real_engine: Engine, request_: str
) -> None:
    first = real_engine.answer("our msp still runs kaspersky for clients, what do we do")
    assert first.answered
    reply = real_engine.answer(request_, context=[first.turn])
    assert reply.declined and not reply.in_context


def test_context_skips_small_talk_and_declines(real_engine: Engine) -> None:
    first = real_engine.answer("who was sanctioned by OFAC?")
    thanks = real_engine.answer("thanks!", context=[first.turn])
    assert thanks.kind == "smalltalk"
    again = real_engine.answer("how many of them?", context=[first.turn, thanks.turn])
    assert again.in_context and "12" in again.text


@pytest.mark.parametrize(
    "remark",
    [
        "lmao ok",
        "fair",
        "ok noted",
        "gotcha, thanks anyway",
        "ok thanks for that",
        "wow that's so wild",
        "ugh, that really sucks",
    ],
)
def test_an_acknowledgement_after_an_answer_is_small_talk_not_the_fact_again(
    real_engine: Engine, remark: str
) -> None:
    """People say "lmao ok" or "that sucks" to an answer in a thread; read in its context, a
    remark like that (above all one with "that" in it) once pulled the previous answer back up.
    None of these is a phrasing as written."""
    first = real_engine.answer("when do kaspersky updates stop?")
    reply = real_engine.answer(remark, context=[first.turn])
    assert reply.kind == "smalltalk" and not reply.in_context and not reply.sources


def test_context_of_a_removed_entry_is_ignored(real_engine: Engine) -> None:
    stale = Turn("when did updates stop?", ("an-entry-that-no-longer-exists",))
    a = real_engine.answer("why?", context=[stale])
    assert not a.in_context


def test_a_follow_up_that_points_back_with_a_pronoun_is_read_about_the_topic(
    real_engine: Engine,
) -> None:
    first = real_engine.answer("can kaspersky tech be hidden inside other brands")
    assert first.answered
    # Alone, "that" is whatever scores best: the exclusions, not the products just asked about.
    assert "integrat" not in real_engine.answer("so is that banned too?").text.lower()
    follow_up = real_engine.answer("so is that banned too?", context=[first.turn])
    assert follow_up.in_context and "integrat" in follow_up.text.lower()


def test_sentences_keep_abbreviations_and_initials_whole() -> None:
    text = (
        "Updates stopped at 12:00 a.m. EDT on Sept. 29, 2024. Elaine C. Duke signed it. "
        'The U.S. agreed: "no." Why? 12 people were named.'
    )
    assert sentences(text) == [
        "Updates stopped at 12:00 a.m. EDT on Sept. 29, 2024.",
        "Elaine C. Duke signed it.",
        'The U.S. agreed: "no."',
        "Why?",
        "12 people were named.",
    ]


def test_every_answer_in_the_knowledge_set_splits_into_whole_sentences(
    real_engine: Engine,
) -> None:
    for entry in real_engine.knowledge.entries:
        for text in (entry.answer, *(p.text for p in entry.points)):
            found = sentences(text)
            assert "".join("".join(found).split()) == "".join(text.split()), entry.id
            for sentence in found:  # never cut inside "12:00 a.m. EDT" or after an initial
                assert not sentence.endswith(("a.m.", "p.m.", "U.S.")), (entry.id, sentence)
                assert not (len(sentence) > 1 and sentence[-2].isupper() and sentence[-3] == " ")


def test_a_when_question_sets_off_the_dated_sentence(real_engine: Engine) -> None:
    first = real_engine.answer("we're an MSP with clients on kaspersky, what do we need to do?")
    when = real_engine.answer("by when?", context=[first.turn])
    assert when.entry_id == first.entry_id and len(when.emphasis) == 1
    [dated] = when.emphasis
    assert dated in when.text and "September 29, 2024" in dated
    # Other questions, or an answer whose every sentence is dated, set nothing off.
    assert real_engine.answer("why was kaspersky banned?").emphasis == ()
    assert real_engine.answer("when do kaspersky updates stop?").emphasis == ()


def test_answering_sentences_pick_what_is_asked_for() -> None:
    text = "It began on June 20, 2024. Twelve leaders were named. Nobody knows why."
    assert answering_sentences("what day was that?", text) == ("It began on June 20, 2024.",)
    assert answering_sentences("how many people?", text) == ("Twelve leaders were named.",)
    assert answering_sentences("who did it?", text) == ()
    assert answering_sentences("when?", "On June 20, 2024. On July 20, 2024. Done.") == ()


@given(st.text(alphabet=st.sampled_from(list('aAzZ09 .!?"\u201c\u201d()\u2019:,\n')), max_size=200))
def test_sentences_lose_and_reorder_nothing(text: str) -> None:
    found = sentences(text)
    assert "".join("".join(found).split()) == "".join(text.split())
    assert all(s == s.strip() and s for s in found)


def test_a_follow_up_with_nothing_before_it_asks_for_the_whole_question(
    real_engine: Engine,
) -> None:
    why = real_engine.answer("why?")
    assert why.kind == "decline" and why.text.startswith("I don't know what that refers to")
    assert why.examples  # surfaces offer examples, as for any decline
    assert real_engine.answer_many(["why?"])[0].text == why.text  # `ban-bot ask --json -` too
    # With a topic it is answered; a question that names its own subject gets the usual decline.
    first = real_engine.answer("when did kaspersky updates stop?")
    assert real_engine.answer("why?", context=[first.turn]).answered
    sky = real_engine.answer("why is the sky blue?")
    assert sky.kind == "decline" and "refers to" not in sky.text


def test_a_follow_up_on_the_answer_just_shown_sets_off_the_sentence_it_is_about(
    real_engine: Engine,
) -> None:
    first = real_engine.answer("did kaspersky sue over the 2017 bans?")
    judge = real_engine.answer("who was the judge", context=[first.turn])
    assert judge.in_context and judge.entry_id == first.entry_id
    [sentence] = judge.emphasis
    assert sentence in judge.text and "Kollar-Kotelly" in sentence
    # Asked on its own, the same entry's answer sets nothing off: all of it answers.
    assert real_engine.answer("did kaspersky sue over the 2017 bans?").emphasis == ()
    # Nothing rare in common, or a tie across most of the answer: nothing set off.
    searcher = real_engine._state.searcher
    assert searcher.matching_sentences("and?", judge.text) == ()
    assert searcher.matching_sentences("kaspersky", "Kaspersky sued. Kaspersky lost.") == ()
