"""``make bench``: measured figures for the build and the answering path, against raw baselines.

Prints, in one run on this machine: model load time; full and no-op build times; per-question
latency (p50/p95/p99 over distinct questions) of the whole answer pipeline, of a raw torch
baseline (sentence-transformers encode + bare FAISS search) and of a raw ONNX baseline (encode +
bare FAISS search), with ratios; cold start of ``ban-bot ask``; peak RSS of the answering
process; the eval set's scores on the ONNX path and on the torch path. Exits 1 if a target is
missed: the timing thresholds live here, not in unit tests.

Usage::

    python -m bot.bench [--questions 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import ROOT, Settings

TARGETS = {
    "answer_p50_ms": 5.0,  # issue 6
    "answer_with_context_p50_ms": 5.0,  # issue 10: a question with a conversation before it
    "follow_up_p50_ms": 10.0,  # the follow-up path reads the question twice (measured apart)
    "answer_p99_ms": 15.0,  # issue 6
    "ratio_vs_torch_baseline_p50": 0.5,  # issue 9 (issue 2 asked for 1.3x)
    "noop_build_s": 1.0,
    "cold_start_ask_s": 1.0,  # issue 9 (issue 6 asked for 2 s)
    "serving_peak_rss_mb": 300.0,  # issue 9 (issue 6 asked for 350 MB)
}
PREFIXES = ("", "hey, ", "quick question: ", "pls help: ", "@ban-bot ", "so ")
# Questions answered, untimed, before the timed ones (none of them among the timed).
WARM_UP = 50


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
    }


def distinct_questions(settings: Settings, n: int) -> list[str]:
    """``n`` distinct, realistic questions: every knowledge phrasing and eval case, varied."""
    from bot.evaluate import DEFAULT_CASES, load_cases
    from bot.knowledge import load_knowledge

    base = [q for e in load_knowledge(settings.knowledge_dir).entries for q in e.questions]
    if DEFAULT_CASES.is_file():
        base += [c.q for c in load_cases(DEFAULT_CASES).cases]
    out: list[str] = []
    seen: set[str] = set()
    for prefix in PREFIXES:
        for q in base:
            text = prefix + (q[0].lower() + q[1:] if prefix else q)
            if text not in seen:
                seen.add(text)
                out.append(text)
            if len(out) == n:
                return out
    return out


def follow_up_pairs(n: int) -> list[tuple[str, str]]:
    """``n`` (topic question, follow-up) pairs from the conversation eval set's follow-ups, each
    follow-up made distinct (so that the encoder's cache of recent questions never helps)."""
    from bot.evaluate import CONVERSATIONS, load_suite

    pairs: list[tuple[str, str]] = []
    for conv in load_suite(CONVERSATIONS).conversations:
        for before, turn in zip(conv.turns, conv.turns[1:], strict=False):
            if turn.context and not before.smalltalk:
                pairs.append((before.q, turn.q))
    out: list[tuple[str, str]] = []
    for prefix in PREFIXES:
        out += [(topic, prefix + q) for topic, q in pairs]
    return out[:n]


def _timed(answer: Any, items: list[Any]) -> list[float]:
    times = []
    for item in items:
        s = time.perf_counter()
        answer(item)
        times.append((time.perf_counter() - s) * 1000)
    return times


def _serving_worker(index_dir: str, questions_file: str) -> None:
    """Runs in a fresh process: load the engine as a server would and time each answer."""
    from bot.answer import Engine

    data = json.loads(Path(questions_file).read_text())
    questions, follow_ups = data["questions"], data["follow_ups"]
    t0 = time.perf_counter()
    settings = Settings.from_env(dotenv=False).with_overrides(index_dir=Path(index_dir))
    engine = Engine.load(settings)
    load_s = time.perf_counter() - t0
    # Steady state, as a server is after its first minutes: onnxruntime plans its memory once per
    # input shape, so the first questions of each length cost more. Other questions warm it up.
    for question in data["warm_up"]:
        engine.answer(question)
    clear_cache = getattr(engine.encoder, "cache_clear", None)
    if clear_cache is not None:
        clear_cache()
    # Each answer beside the raw ONNX baseline for the same question (encode + bare FAISS search,
    # nothing else), in turns, so both see the machine as it is that moment (its speed drifts).
    encoder: Any = engine.encoder
    index = engine.index.faiss_index
    takes_cache = _takes_cache(encoder)

    def raw_search(q: str) -> None:
        # Distinct questions miss the encoder's cache anyway; bypass it to be sure.
        v = encoder.encode([q], cache=False) if takes_cache else encoder.encode([q])
        index.search(np.ascontiguousarray(v, dtype=np.float32), 10)

    times: list[float] = []
    raw: list[float] = []
    for i, q in enumerate(questions):
        pair = [(engine.answer, times), (raw_search, raw)]
        for run, into in pair if i % 2 else reversed(pair):
            into.extend(_timed(run, [q]))
    # Each question with the one before it as the conversation so far: the cost of context
    # for questions that stand alone (most do).
    previous = [engine.answer(q).turn for q in ["warm-up question", *questions[:-1]]]
    if clear_cache is not None:  # those answers filled the encoder's cache: no help from it
        clear_cache()
    with_context = _timed(
        lambda i: engine.answer(questions[i], [previous[i]]), list(range(len(questions)))
    )
    # Follow-ups that need the context: read twice, alone and with the topic.
    topics = [engine.answer(topic).turn for topic, _ in follow_ups]
    if clear_cache is not None:
        clear_cache()
    follow = _timed(
        lambda i: engine.answer(follow_ups[i][1], [topics[i]]), list(range(len(follow_ups)))
    )
    print(
        json.dumps(
            {
                "engine_load_s": load_s,
                "answer": percentiles(times),
                "answer_with_context": percentiles(with_context),
                "follow_up": percentiles(follow),
                "follow_ups": len(follow),
                "raw_onnx": percentiles(raw),
                "peak_rss_mb": peak_rss_mb(),
                "torch_imported": "torch" in sys.modules,
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM, not getrusage: ru_maxrss survives fork+exec, so
    a child of a large process would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_load_worker() -> None:
    """Runs in a fresh process: import sentence-transformers and load the bundled model, cold."""
    t0 = time.perf_counter()
    from bot.embedding import TorchEmbedder, resolve_model

    TorchEmbedder(resolve_model(Settings.from_env(dotenv=False).model))
    print(json.dumps({"model_load_s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}))


def _takes_cache(encoder: Any) -> bool:
    import inspect

    return "cache" in inspect.signature(encoder.encode).parameters


def _torch_baseline(settings: Settings, questions: list[str]) -> dict[str, Any]:
    import faiss

    from bot.embedding import TorchEmbedder, resolve_model
    from bot.index import load_index

    embedder = TorchEmbedder(resolve_model(settings.model))
    loaded = load_index(settings.index_dir)
    flat = faiss.IndexFlatIP(loaded.embeddings.shape[1])
    flat.add(loaded.embeddings)
    embedder.encode(["warm-up"])
    times = []
    for q in questions:
        s = time.perf_counter()
        v = embedder.encode([q])
        flat.search(v, 10)
        times.append((time.perf_counter() - s) * 1000)
    return {"latency": percentiles(times)}


def _eval_scores(settings: Settings, torch_path: bool) -> dict[str, float]:
    """Every suite's scores over all its cases, as ``suite.metric``."""
    from bot.answer import Engine
    from bot.evaluate import SUITES, evaluate, load_suite

    encoder = None
    if torch_path:
        from bot.embedding import TorchEmbedder, resolve_model

        encoder = TorchEmbedder(resolve_model(settings.model))
    engine = Engine.load(settings, encoder=encoder)
    scores: dict[str, float] = {}
    for path in SUITES:
        report = evaluate(engine, load_suite(path))
        scores.update({f"{report.suite}.{k}": v for k, v in report.metrics["all"].items()})
    return scores


def _cold_start(index_dir: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BAN_BOT_INDEX_DIR": str(index_dir)}
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bot", "ask", "when do kaspersky updates stop?"],
            check=True,
            capture_output=True,
            env=env,
            cwd=ROOT,
        )
        best = min(best, time.perf_counter() - t0)
    return best


def _edit_build(settings: Settings, work: Path) -> float:
    """A curator's edit rebuilt by ``ban-bot index build`` in a fresh process, start to exit: one
    question added to the first entry, embedded with the index's own ONNX encoder."""
    knowledge = work / "knowledge"
    shutil.copytree(settings.knowledge_dir, knowledge)
    first = sorted(knowledge.glob("*.yaml"))[0]
    text = first.read_text()
    at = text.index("questions:")
    indent = " " * (at - text.rindex("\n", 0, at) - 1 + 2)
    end = at + len("questions:")
    first.write_text(text[:end] + f"\n{indent}- Is this what a curator added today?" + text[end:])
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bot", "index", "build",
         "--knowledge", str(knowledge), "--index", str(settings.index_dir)],
        check=True, capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if "(1 embedded," not in out.stdout:
        raise RuntimeError(f"the edit was not embedded alone: {out.stdout.strip()}")
    return seconds


def _python(*args: str) -> dict[str, Any]:
    """Run ``python -m bot.bench ARGS`` in a fresh process and return its JSON line."""
    out = subprocess.run(
        [sys.executable, "-m", "bot.bench", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(n_questions: int) -> dict[str, Any]:
    from bot.index import build_index

    base = Settings.from_env(dotenv=False)
    model_load = _python("--model-load")
    work = Path(tempfile.mkdtemp(prefix="ban-bot-bench-"))
    try:
        settings = base.with_overrides(index_dir=work / "index")
        t0 = time.perf_counter()
        build = build_index(settings, progress=False)
        full_build_s = time.perf_counter() - t0
        noop = build_index(settings, progress=False)
        pool = distinct_questions(settings, n_questions + WARM_UP)
        questions, warm_up = pool[:n_questions], pool[n_questions:]
        follow_ups = follow_up_pairs(n_questions)
        qfile = work / "questions.json"
        qfile.write_text(
            json.dumps({"questions": questions, "warm_up": warm_up, "follow_ups": follow_ups})
        )

        serving = _python("--worker", str(settings.index_dir), str(qfile))
        cold = _cold_start(settings.index_dir)
        torch_base = _torch_baseline(settings, questions)
        eval_onnx = _eval_scores(settings, torch_path=False)
        eval_torch = _eval_scores(settings, torch_path=True)
        edit_build_s = _edit_build(settings, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    answer, raw_onnx, raw_torch = serving["answer"], serving["raw_onnx"], torch_base["latency"]
    figures = {
        "questions": len(questions),
        "entries": build.entries,
        "vectors": build.vectors,
        "model_load_s": model_load["model_load_s"],
        "model_load_peak_rss_mb": model_load["peak_rss_mb"],
        "engine_load_s": serving["engine_load_s"],
        "full_build_s": full_build_s,
        "noop_build_s": noop.seconds,
        "edit_build_s": edit_build_s,
        "answer_ms": answer,
        "answer_with_context_ms": serving["answer_with_context"],
        "follow_up_ms": serving["follow_up"],
        "follow_ups": serving["follow_ups"],
        "raw_torch_ms": raw_torch,
        "raw_onnx_ms": raw_onnx,
        "ratio_vs_torch_baseline_p50": answer["p50"] / raw_torch["p50"],
        "ratio_vs_onnx_baseline_p50": answer["p50"] / raw_onnx["p50"],
        "cold_start_ask_s": cold,
        "serving_peak_rss_mb": serving["peak_rss_mb"],
        "serving_imports_torch": serving["torch_imported"],
        "eval_onnx": eval_onnx,
        "eval_torch": eval_torch,
    }
    checks = {
        "answer_p50_ms": answer["p50"],
        "answer_p99_ms": answer["p99"],
        "answer_with_context_p50_ms": serving["answer_with_context"]["p50"],
        "follow_up_p50_ms": serving["follow_up"]["p50"],
        "ratio_vs_torch_baseline_p50": figures["ratio_vs_torch_baseline_p50"],
        "noop_build_s": noop.seconds,
        "cold_start_ask_s": cold,
        "serving_peak_rss_mb": serving["peak_rss_mb"],
    }
    figures["failed"] = [k for k, v in checks.items() if v > TARGETS[k]]
    if serving["torch_imported"]:
        figures["failed"].append("serving process imported torch")
    if any(eval_onnx[k] < eval_torch[k] - 1e-9 for k in eval_onnx):
        figures["failed"].append("eval scores lower on the ONNX path than on torch")
    return figures


def render(f: dict[str, Any]) -> str:
    def ms(d: dict[str, float]) -> str:
        return f"p50 {d['p50']:6.2f}  p95 {d['p95']:6.2f}  p99 {d['p99']:6.2f} ms"

    lines = [
        f"ban-bot bench: {f['entries']} entries, {f['vectors']} vectors, "
        f"{f['questions']} distinct questions, {os.cpu_count()} cores",
        f"model load, cold (sentence-transformers)   {f['model_load_s']:.2f} s, "
        f"{f['model_load_peak_rss_mb']:.0f} MB",
        f"engine load (ONNX, verified index)         {f['engine_load_s']:.2f} s",
        f"full build                                 {f['full_build_s']:.2f} s",
        f"no-op build                                {f['noop_build_s']:.3f} s   (target < 1 s)",
        f"build after an edit (fresh process)        {f['edit_build_s']:.2f} s",
        f"answer, whole pipeline                     {ms(f['answer_ms'])}",
        f"answer, with a conversation before it      {ms(f['answer_with_context_ms'])}"
        "   (target p50 <= 5 ms)",
        f"follow-up read in context ({f['follow_ups']:3d} of them)   {ms(f['follow_up_ms'])}"
        "   (target p50 <= 10 ms)",
        f"raw baseline, torch encode + FAISS         {ms(f['raw_torch_ms'])}",
        f"raw baseline, ONNX encode + FAISS          {ms(f['raw_onnx_ms'])}",
        f"ratio answer / torch baseline (p50)        {f['ratio_vs_torch_baseline_p50']:.2f}x"
        "   (target <= 0.5x)",
        f"ratio answer / ONNX baseline (p50)         {f['ratio_vs_onnx_baseline_p50']:.2f}x",
        f"cold start, `ban-bot ask` to answer         {f['cold_start_ask_s']:.2f} s   (target <= 1 s)",
        f"peak RSS, answering process                {f['serving_peak_rss_mb']:.0f} MB"
        "   (target <= 300 MB)",
        f"answering process imported torch           {f['serving_imports_torch']}",
        "eval (ONNX path / torch path):",
    ]
    for k, v in f["eval_onnx"].items():
        lines.append(f"  {k:42} {v:.3f} / {f['eval_torch'][k]:.3f}")
    lines.append(
        "targets: " + ("all met" if not f["failed"] else "MISSED " + ", ".join(f["failed"]))
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model-load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker", nargs=2, metavar=("INDEX_DIR", "QUESTIONS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model_load:
        _model_load_worker()
        return 0
    if args.worker:
        _serving_worker(*args.worker)
        return 0
    figures = run(args.questions)
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
