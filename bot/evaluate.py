"""The eval set: how well the engine retrieves, answers and declines, against kept thresholds.

Usage::

    suite = load_cases(DEFAULT_CASES)
    report = evaluate(engine, suite)
    print(report.render()); assert report.passed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.answer import Answer, Engine
from bot.config import ROOT
from bot.knowledge import KnowledgeError

DEFAULT_CASES = ROOT / "tests" / "eval" / "cases.yaml"
METRICS = ("hit_at_1", "hit_at_3", "mrr", "fact_accuracy", "decline_precision", "decline_recall")


@dataclass(frozen=True)
class Case:
    q: str
    expect: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    decline: bool = False


@dataclass(frozen=True)
class Suite:
    cases: tuple[Case, ...]
    thresholds: dict[str, float]
    path: Path


@dataclass
class Report:
    metrics: dict[str, float]
    thresholds: dict[str, float]
    counts: dict[str, int]
    failures: list[str] = field(default_factory=list)

    @property
    def below(self) -> list[str]:
        return [
            f"{name} {self.metrics[name]:.3f} < {limit:.3f}"
            for name, limit in self.thresholds.items()
            if self.metrics.get(name, 0.0) < limit
        ]

    @property
    def passed(self) -> bool:
        return not self.below

    def render(self, *, show_failures: bool = False) -> str:
        lines = [
            f"cases: {self.counts['cases']} ({self.counts['answerable']} answerable, "
            f"{self.counts['declinable']} should decline)"
        ]
        for name in METRICS:
            limit = self.thresholds.get(name)
            mark = "" if limit is None else ("  ok" if self.metrics[name] >= limit else "  LOW")
            bound = "" if limit is None else f"  (threshold {limit:.2f})"
            lines.append(f"{name:18} {self.metrics[name]:.3f}{bound}{mark}")
        if show_failures and self.failures:
            lines.append("")
            lines.append("misses:")
            lines.extend(f"  {f}" for f in self.failures)
        return "\n".join(lines)


def load_cases(path: Path) -> Suite:
    """Read a cases file; a malformed case is reported by its number and question."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise KnowledgeError(f"{path}: cannot read the cases file ({e.strerror}).") from None
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: YAML error: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise KnowledgeError(f"{path}: expected a mapping with a 'cases' list.")
    thresholds = {str(k): float(v) for k, v in (data.get("thresholds") or {}).items()}
    unknown = set(thresholds) - set(METRICS)
    if unknown:
        raise KnowledgeError(f"{path}: unknown threshold {sorted(unknown)[0]!r}.")
    cases = []
    for i, raw in enumerate(data["cases"], 1):
        if not isinstance(raw, dict) or not isinstance(raw.get("q"), str):
            raise KnowledgeError(f"{path}: case #{i} needs a 'q' question.")
        case = Case(
            q=raw["q"],
            expect=tuple(raw.get("expect") or ()),
            facts=tuple(str(f) for f in raw.get("facts") or ()),
            decline=bool(raw.get("decline", False)),
        )
        if case.decline == bool(case.expect):
            raise KnowledgeError(
                f"{path}: case #{i} ({case.q!r}) needs either 'expect' ids or 'decline: true'."
            )
        cases.append(case)
    return Suite(tuple(cases), thresholds, Path(path))


def score(cases: tuple[Case, ...], answers: list[Answer]) -> Report:
    """Metrics for answers given to cases, in the same order."""
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
        ranked = list(ans.entry_ids)
        rank = next((i for i, e in enumerate(ranked) if e in case.expect), None)
        # A declined answer retrieved nothing for the user: no hit, whatever the ranking said.
        if ans.declined:
            rank = None
        if rank == 0:
            hit1 += 1
        if rank is not None and rank < 3:
            hit3 += 1
            rr += 1.0 / (rank + 1)
        text = ans.text.lower()
        if rank == 0 and all(f.lower() in text for f in case.facts):
            facts_ok += 1
        elif rank != 0:
            why = "declined" if ans.declined else f"got {ranked[:3]}"
            failures.append(f"expected {list(case.expect)}: {case.q!r} ({why}, {ans.score:.3f})")
        else:
            missing = [f for f in case.facts if f.lower() not in text]
            failures.append(f"missing facts {missing}: {case.q!r}")
    n = max(len(answerable), 1)
    metrics = {
        "hit_at_1": hit1 / n,
        "hit_at_3": hit3 / n,
        "mrr": rr / n,
        "fact_accuracy": facts_ok / n,
        "decline_precision": true_declines / declined_total if declined_total else 1.0,
        "decline_recall": true_declines / len(should_decline) if should_decline else 1.0,
    }
    counts = {
        "cases": len(cases),
        "answerable": len(answerable),
        "declinable": len(should_decline),
    }
    return Report(metrics, {}, counts, failures)


def evaluate(engine: Engine, suite: Suite) -> Report:
    """Answer every case with the engine and score the answers against the suite's thresholds."""
    known = set(engine.knowledge.by_id)
    for i, case in enumerate(suite.cases, 1):
        for entry_id in case.expect:
            if entry_id not in known:
                raise KnowledgeError(
                    f"{suite.path}: case #{i} ({case.q!r}) expects unknown entry {entry_id!r}."
                )
    answers = engine.answer_many([c.q for c in suite.cases])
    report = score(suite.cases, answers)
    report.thresholds = dict(suite.thresholds)
    return report
