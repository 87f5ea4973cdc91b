"""The eval sets: how well the engine retrieves, answers, declines and follows a conversation,
against thresholds kept beside the cases.

Three suites live in ``tests/eval/``:

- ``cases.yaml``: questions written the way people ask in Slack, with the entry ids that answer
  them (hit@1, hit@3, MRR), the facts the answer must hold, and questions to decline;
- ``real_world.yaml``: questions people asked in public, kept as phrased, each with its URL, and
  the facts any right answer holds (the entry that holds them does not matter);
- ``conversations.yaml``: conversations of 2-4 turns: follow-ups that need the context, topic
  switches that must not be pulled back, small talk and declines.

Each case (or conversation) falls in the ``tune`` or the ``held-out`` half by a hash of its
question (or id), so nobody picks the halves. ``thresholds`` apply to every case,
``held_out_thresholds`` to the held-out half only: both are floors, and a score below one fails
``make eval`` and ``make test``. ``held_out_targets`` are the goals the held-out half is worked
towards (an issue's "done when"): a score short of one is reported, and fails nothing, so the
floors can guard today's figures while the targets say how far there is to go.

Usage::

    suite = load_suite(REAL_WORLD)
    report = evaluate(engine, suite)
    print(report.render()); assert report.passed
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.answer import Answer, Engine
from bot.config import ROOT
from bot.knowledge import KnowledgeError
from bot.turns import Turn

EVAL_DIR = ROOT / "tests" / "eval"
DEFAULT_CASES = EVAL_DIR / "cases.yaml"
REAL_WORLD = EVAL_DIR / "real_world.yaml"
CONVERSATIONS = EVAL_DIR / "conversations.yaml"
SUITES = (DEFAULT_CASES, REAL_WORLD, CONVERSATIONS)
HALVES = ("tune", "held-out")

CASE_METRICS = (
    "hit_at_1",
    "hit_at_3",
    "mrr",
    "fact_accuracy",
    "decline_precision",
    "decline_recall",
)
TURN_METRICS = (
    "follow_up_fact_accuracy",
    "standalone_fact_accuracy",
    "standalone_kept",
    "smalltalk_accuracy",
    "decline_accuracy",
)
_CASE_META = frozenset({"url", "kind", "audience", "origin", "note"})

# A fact is a string the answer must contain, or a list of strings of which it must contain one.
Fact = str | tuple[str, ...]


def half_of(key: str) -> str:
    """``tune`` or ``held-out``, fixed by a hash of the case's question or conversation id."""
    digest = hashlib.sha256(" ".join(key.lower().split()).encode("utf-8")).digest()
    return HALVES[digest[0] % 2]


def holds(text: str, facts: Sequence[Fact]) -> list[Fact]:
    """The facts ``text`` does not hold (case-insensitive); empty when it holds them all."""
    lowered = text.lower()
    missing: list[Fact] = []
    for fact in facts:
        options = (fact,) if isinstance(fact, str) else fact
        if not any(o.lower() in lowered for o in options):
            missing.append(fact)
    return missing


@dataclass(frozen=True)
class Case:
    q: str
    expect: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    decline: bool = False
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def half(self) -> str:
        return half_of(self.q)


@dataclass(frozen=True)
class TurnCase:
    q: str
    facts: tuple[Fact, ...] = ()
    context: bool = False
    smalltalk: bool = False
    decline: bool = False


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[TurnCase, ...]

    @property
    def half(self) -> str:
        return half_of(self.id)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    cases: tuple[Case, ...] = ()
    conversations: tuple[Conversation, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    held_out_thresholds: dict[str, float] = field(default_factory=dict)
    held_out_targets: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        return TURN_METRICS if self.conversations else CASE_METRICS


@dataclass
class EvalReport:
    """Metrics for every case, and for each half; the thresholds they are held to."""

    suite: str
    metrics: dict[str, dict[str, float]]  # "all" / "tune" / "held-out" -> metric -> score
    counts: dict[str, int]
    names: tuple[str, ...]
    thresholds: dict[str, float] = field(default_factory=dict)
    held_out_thresholds: dict[str, float] = field(default_factory=dict)
    held_out_targets: dict[str, float] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # scope -> misses

    @property
    def below(self) -> list[str]:
        out = []
        for scope, limits in (("all", self.thresholds), ("held-out", self.held_out_thresholds)):
            for name, limit in limits.items():
                value = self.metrics[scope].get(name, 0.0)
                if value < limit:
                    out.append(f"{self.suite}: {name} ({scope}) {value:.3f} < {limit:.3f}")
        return out

    @property
    def passed(self) -> bool:
        return not self.below

    @property
    def short_of_targets(self) -> list[str]:
        """The held-out scores still short of their targets (reported, not failed)."""
        return [
            f"{self.suite}: {name} (held-out) {self.metrics['held-out'].get(name, 0.0):.3f}"
            f" < target {target:.3f}"
            for name, target in self.held_out_targets.items()
            if self.metrics["held-out"].get(name, 0.0) < target
        ]

    def render(self, *, show_failures: bool = False, half: str = "all") -> str:
        """The metrics table; with ``show_failures``, the misses of ``half`` (``all``, ``tune``
        or ``held-out``: tune on one half, and look at the other only to report it)."""
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        lines = [f"{self.suite}: {counts}", f"{'':26} {'all':>7} {'tune':>7} {'held-out':>9}"]
        for name in self.names:
            row = f"{name:26} " + " ".join(
                f"{self.metrics[s][name]:{w}.3f}" for s, w in (("all", 7), ("tune", 7))
            )
            row += f" {self.metrics['held-out'][name]:9.3f}"
            notes = []
            for scope, limits in (("all", self.thresholds), ("held-out", self.held_out_thresholds)):
                if name in limits:
                    ok = self.metrics[scope][name] >= limits[name]
                    notes.append(f"{scope} >= {limits[name]:.2f} {'ok' if ok else 'LOW'}")
            if name in self.held_out_targets:
                met = self.metrics["held-out"][name] >= self.held_out_targets[name]
                notes.append(
                    f"target {self.held_out_targets[name]:.2f} {'met' if met else 'not yet'}"
                )
            lines.append(row + ("  (" + "; ".join(notes) + ")" if notes else ""))
        misses = self.failures.get(half, [])
        if show_failures and misses:
            lines += ["", f"misses ({half}):", *(f"  {f}" for f in misses)]
        return "\n".join(lines)


# ---------------------------------------------------------------- loading


def _facts(raw: Any, where: str) -> tuple[Fact, ...]:
    out: list[Fact] = []
    for item in raw or ():
        if isinstance(item, list) and item and all(isinstance(x, str) for x in item):
            out.append(tuple(item))
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise KnowledgeError(f"{where}: a fact is a string or a list of strings.")
    return tuple(out)


def _thresholds(data: dict[str, Any], key: str, names: tuple[str, ...], path: Path) -> dict:
    limits = {str(k): float(v) for k, v in (data.get(key) or {}).items()}
    unknown = set(limits) - set(names)
    if unknown:
        raise KnowledgeError(f"{path}: unknown threshold {sorted(unknown)[0]!r} in {key!r}.")
    return limits


def load_suite(path: Path) -> Suite:
    """Read a suite; a malformed case is reported by its number and question."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise KnowledgeError(f"{path}: cannot read the eval file ({e.strerror}).") from None
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: YAML error: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: expected a mapping with 'cases' or 'conversations'.")
    name = path.stem
    names: tuple[str, ...]
    if isinstance(data.get("conversations"), list):
        names = TURN_METRICS
        conversations = tuple(
            _conversation(c, i, path) for i, c in enumerate(data["conversations"], 1)
        )
        cases: tuple[Case, ...] = ()
    elif isinstance(data.get("cases"), list):
        names = CASE_METRICS
        cases = tuple(_case(c, i, path) for i, c in enumerate(data["cases"], 1))
        conversations = ()
    else:
        raise KnowledgeError(f"{path}: expected a 'cases' or a 'conversations' list.")
    return Suite(
        name=name,
        path=path,
        cases=cases,
        conversations=conversations,
        thresholds=_thresholds(data, "thresholds", names, path),
        held_out_thresholds=_thresholds(data, "held_out_thresholds", names, path),
        held_out_targets=_thresholds(data, "held_out_targets", names, path),
    )


def load_cases(path: Path) -> Suite:
    """A single-question suite (``cases.yaml`` or ``real_world.yaml``)."""
    suite = load_suite(path)
    if suite.conversations:
        raise KnowledgeError(f"{path}: holds conversations, not single questions.")
    return suite


def _case(raw: Any, i: int, path: Path) -> Case:
    if not isinstance(raw, dict) or not isinstance(raw.get("q"), str):
        raise KnowledgeError(f"{path}: case #{i} needs a 'q' question.")
    where = f"{path}: case #{i} ({raw['q']!r})"
    unknown = set(raw) - {"q", "expect", "facts", "decline"} - _CASE_META
    if unknown:
        raise KnowledgeError(f"{where}: unknown field {sorted(unknown)[0]!r}.")
    case = Case(
        q=raw["q"],
        expect=tuple(raw.get("expect") or ()),
        facts=_facts(raw.get("facts"), where),
        decline=bool(raw.get("decline", False)),
        meta={k: str(v) for k, v in raw.items() if k in _CASE_META},
    )
    if case.decline == bool(case.expect or case.facts):
        raise KnowledgeError(f"{where}: needs either 'expect' ids or 'facts', or 'decline: true'.")
    return case


def _conversation(raw: Any, i: int, path: Path) -> Conversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list) or not raw["turns"]:
        raise KnowledgeError(f"{path}: conversation #{i} needs an 'id' and a 'turns' list.")
    ident = str(raw.get("id") or f"#{i}")
    turns = []
    for j, t in enumerate(raw["turns"], 1):
        where = f"{path}: conversation {ident!r}, turn {j}"
        if not isinstance(t, dict) or not isinstance(t.get("q"), str):
            raise KnowledgeError(f"{where} needs a 'q'.")
        turn = TurnCase(
            q=t["q"],
            facts=_facts(t.get("facts"), where),
            context=bool(t.get("context", False)),
            smalltalk=bool(t.get("smalltalk", False)),
            decline=bool(t.get("decline", False)),
        )
        if sum((bool(turn.facts), turn.smalltalk, turn.decline)) != 1:
            raise KnowledgeError(f"{where}: needs exactly one of 'facts', 'smalltalk', 'decline'.")
        turns.append(turn)
    return Conversation(ident, tuple(turns))


# ---------------------------------------------------------------- scoring


def _ratio(num: float, den: int, empty: float = 1.0) -> float:
    return num / den if den else empty


def score(cases: Sequence[Case], answers: Sequence[Answer]) -> tuple[dict[str, float], list[str]]:
    """Metrics for answers given to cases, in the same order, and the misses."""
    hit1 = hit3 = rr = facts_ok = 0.0
    answerable = [c for c in cases if not c.decline]
    should_decline = [c for c in cases if c.decline]
    true_declines = declined_total = 0
    failures: list[str] = []
    for case, ans in zip(cases, answers, strict=True):
        if ans.declined:
            declined_total += 1
        if case.decline:
            if ans.declined:
                true_declines += 1
            else:
                failures.append(f"answered, should decline: {case.q!r} -> {ans.entry_ids[:1]}")
            continue
        # A declined answer retrieved nothing for the user: no hit, whatever the ranking said.
        ranked = [] if ans.declined else list(ans.entry_ids)
        if case.expect:
            rank = next((i for i, e in enumerate(ranked) if e in case.expect), None)
        else:  # facts only: the top entry is right when the answer holds the facts
            rank = 0 if ranked and not holds(ans.text, case.facts) else None
        if rank == 0:
            hit1 += 1
        if rank is not None and rank < 3:
            hit3 += 1
            rr += 1.0 / (rank + 1)
        missing = holds(ans.text, case.facts)
        if rank == 0 and not missing:
            facts_ok += 1
        elif rank != 0:
            why = f"{ans.kind}" if ans.declined else f"got {ranked[:3]}"
            want: list[Any] = list(case.expect) or list(case.facts)
            failures.append(f"expected {want}: {case.q!r} ({why}, {ans.score:.3f})")
        else:
            failures.append(f"missing facts {missing}: {case.q!r} -> {ranked[:1]}")
    n = len(answerable)
    metrics = {
        "hit_at_1": _ratio(hit1, n),
        "hit_at_3": _ratio(hit3, n),
        "mrr": _ratio(rr, n),
        "fact_accuracy": _ratio(facts_ok, n),
        "decline_precision": _ratio(true_declines, declined_total),
        "decline_recall": _ratio(true_declines, len(should_decline)),
    }
    return metrics, failures


def _turn_right(turn: TurnCase, ans: Answer) -> bool:
    if turn.smalltalk:
        return ans.kind == "smalltalk"
    if turn.decline:
        return ans.declined and ans.kind != "smalltalk"
    return ans.answered and not holds(ans.text, turn.facts)


@dataclass(frozen=True)
class _Played:
    """One conversation played: each turn's (metric, right) marks and the misses."""

    marks: tuple[tuple[str, bool], ...]
    failures: tuple[str, ...]


def _play(conv: Conversation, answer: Callable[[str, Sequence[Turn]], Answer]) -> _Played:
    """Play ``conv`` turn by turn, the context growing as it would in a thread."""
    marks: list[tuple[str, bool]] = []
    failures: list[str] = []
    context: list[Turn] = []
    for j, turn in enumerate(conv.turns, 1):
        ans = answer(turn.q, context)
        right = _turn_right(turn, ans)
        if turn.smalltalk:
            marks.append(("smalltalk_accuracy", right))
        elif turn.decline:
            marks.append(("decline_accuracy", right))
        elif turn.context:
            marks.append(("follow_up_fact_accuracy", right))
        else:
            marks.append(("standalone_fact_accuracy", right))
            if _turn_right(turn, answer(turn.q, ())):
                marks.append(("standalone_kept", right))
        if not right:
            got = f"{ans.kind} {list(ans.entry_ids[:1])}"
            failures.append(f"{conv.id} turn {j} {turn.q!r}: got {got}, want {turn.facts}")
        context.append(ans.turn)
    return _Played(tuple(marks), tuple(failures))


def _tally(played: Sequence[_Played]) -> tuple[dict[str, float], list[str]]:
    tally: dict[str, list[int]] = {m: [0, 0] for m in TURN_METRICS}  # metric -> [right, total]
    for one in played:
        for metric, right in one.marks:
            tally[metric][0] += int(right)
            tally[metric][1] += 1
    failures = [f for one in played for f in one.failures]
    return {m: _ratio(r, t) for m, (r, t) in tally.items()}, failures


def evaluate(engine: Engine, suite: Suite) -> EvalReport:
    """Answer every case (or play every conversation) and score all of them and each half."""
    known = set(engine.knowledge.by_id)
    for i, case in enumerate(suite.cases, 1):
        for entry_id in case.expect:
            if entry_id not in known:
                raise KnowledgeError(
                    f"{suite.path}: case #{i} ({case.q!r}) expects unknown entry {entry_id!r}."
                )
    metrics: dict[str, dict[str, float]] = {}
    failures: dict[str, list[str]] = {}
    if suite.conversations:
        played = [(c.half, _play(c, engine.answer)) for c in suite.conversations]  # once each
        for scope in ("all", *HALVES):
            chosen = [p for half, p in played if scope in ("all", half)]
            metrics[scope], failures[scope] = _tally(chosen)
        turns = [t for c in suite.conversations for t in c.turns]
        counts = {
            "conversations": len(suite.conversations),
            "turns": len(turns),
            "follow-ups": sum(t.context for t in turns),
        }
    else:
        answers = engine.answer_many([c.q for c in suite.cases])
        for scope in ("all", *HALVES):
            pairs = [
                (c, a)
                for c, a in zip(suite.cases, answers, strict=True)
                if scope in ("all", c.half)
            ]
            metrics[scope], failures[scope] = score([c for c, _ in pairs], [a for _, a in pairs])
        counts = {
            "cases": len(suite.cases),
            "answerable": sum(not c.decline for c in suite.cases),
            "should decline": sum(c.decline for c in suite.cases),
        }
    return EvalReport(
        suite=suite.name,
        metrics=metrics,
        counts=counts,
        names=suite.metrics,
        thresholds=dict(suite.thresholds),
        held_out_thresholds=dict(suite.held_out_thresholds),
        held_out_targets=dict(suite.held_out_targets),
        failures=failures,
    )
