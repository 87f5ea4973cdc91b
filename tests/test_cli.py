"""The ``ban-bot`` command as users run it: real output, real exit codes, in process (click's
CliRunner); a real process where the process is the point (what ``deadlines`` imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_runner import ban_bot as run

from bot.config import ROOT, Settings


def test_bad_knowledge_is_one_clear_line(mini_knowledge: Path, tmp_path: Path) -> None:
    path = mini_knowledge / "mini.yaml"
    path.write_text(path.read_text().replace("category: authority", "category: nonsense"))
    r = run(["index", "build", "--knowledge", str(mini_knowledge), "--index", str(tmp_path / "i")])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "mini.yaml" in lines[0] and "'ofac-designations'" in lines[0]
    assert not (tmp_path / "i" / "CURRENT").exists()


def test_check_without_index_fails_clearly(tmp_path: Path) -> None:
    r = run(["index", "check", "--index", str(tmp_path / "none")])
    assert r.returncode == 1 and "no index has been built yet" in r.stderr
    assert "Traceback" not in r.stderr


def test_ask_without_index_fails_clearly(tmp_path: Path) -> None:
    r = run(["ask", "--index", str(tmp_path / "none"), "when do updates stop?"])
    assert r.returncode == 1 and "ban-bot index build" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_environment_variable_is_named() -> None:
    r = run(["deadlines"], env={"BAN_BOT_ENCODER_THREADS": "two"})
    assert r.returncode == 1 and "BAN_BOT_ENCODER_THREADS" in r.stderr
    assert "Traceback" not in r.stderr


def test_deadlines_is_fast_and_never_imports_torch() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from bot.cli import cli; "
        "r = CliRunner().invoke(cli, ['deadlines', '--json']); "
        "assert r.exit_code == 0, r.output; "
        "print(r.output); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "NO-TORCH" in r.stderr
    events = json.loads(r.stdout)
    cutoff = next(e for e in events if e["date"] == "2024-09-29")
    assert cutoff["time"] == "00:00" and cutoff["key"] and cutoff["past"]
    assert cutoff["when"] == "September 29, 2024, 12:00 a.m. EDT"
    assert cutoff["standing"].endswith("ago")


def test_deadlines_filter_by_word() -> None:
    r = run(["deadlines", "updates"])
    assert r.returncode == 0
    # Only the dates that mention updates: the September 29 cut-off (a key date) among them,
    # not (say) the Final Determination of June 20.
    lines = r.stdout.splitlines()
    dated = [i for i, line in enumerate(lines) if line.startswith(("* ", "  ")) and "): " in line]
    assert any(lines[i].startswith("* September 29, 2024") for i in dated), r.stdout
    assert all("updat" in (lines[i] + lines[i + 1]).lower() for i in dated), r.stdout
    assert "June 20, 2024" not in r.stdout
    r = run(["deadlines", "zzzznothing"])
    assert r.returncode == 0 and "No date in the timeline mentions" in r.stdout
    assert "ban-bot deadlines history" in r.stdout  # the CLI's hint, not Slack's command


@pytest.mark.slow
def test_ask_prints_answer_and_sources(real_settings: Settings) -> None:
    r = run(["ask", "--index", str(real_settings.index_dir), "when do kaspersky updates stop?"])
    assert r.returncode == 0, r.stderr
    assert "September 29, 2024" in r.stdout and "Sources:" in r.stdout


@pytest.mark.slow
def test_the_ask_process_writes_everything_before_it_skips_the_teardown(
    real_settings: Settings, tmp_path: Path
) -> None:
    """``python -m bot ask`` ends without the interpreter's teardown: all of its output, on a
    pipe and in a file, is there first, and a failure still exits with its own status."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BAN_BOT_INDEX_DIR": str(real_settings.index_dir)}
    ask = [sys.executable, "-m", "bot", "ask"]
    piped = subprocess.run(
        [*ask, "--json", "-"],
        input="when do kaspersky updates stop?\nwho got sanctioned by OFAC\n" * 20,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    records = [json.loads(line) for line in piped.stdout.splitlines()]
    assert len(records) == 40 and all(r["answered"] for r in records)
    with (tmp_path / "out.txt").open("w") as out:
        one = subprocess.run(
            [*ask, "when do kaspersky updates stop?"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
    assert one.returncode == 0, one.stderr
    text = (tmp_path / "out.txt").read_text()
    assert "September 29, 2024" in text and text.rstrip().splitlines()[-1].startswith("  ↪")
    missing = subprocess.run(
        [*ask, "--index", str(tmp_path / "none"), "q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert missing.returncode != 0 and "index" in missing.stderr


@pytest.mark.slow
def test_ask_json_lines_in_order(real_settings: Settings) -> None:
    questions = [
        "when do kaspersky updates stop?",
        "",
        "best pizza in town?",
        "who got sanctioned by OFAC",
        "<!channel> is it illegal for me to keep using kaspersky?",
        "x" * 50_000,
    ]
    r = run(
        ["ask", "--json", "--index", str(real_settings.index_dir), "-"],
        stdin="\n".join(questions) + "\n",
    )
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(records) == len(questions)
    for q, rec in zip(questions, records, strict=True):
        assert set(rec) == {
            "question",
            "kind",
            "answered",
            "answer",
            "sources",
            "score",
            "entry_ids",
        }
        assert rec["question"] == q.replace("<!channel> ", "")[:2000]
        assert isinstance(rec["answered"], bool) and isinstance(rec["score"], float)
        assert all(set(s) == {"title", "url"} for s in rec["sources"])
    assert records[0]["answered"] and "September 29, 2024" in records[0]["answer"]
    assert not records[1]["answered"] and not records[2]["answered"]
    assert records[3]["answered"] and records[4]["answered"]


@pytest.mark.slow
def test_index_check_and_noop_build(real_settings: Settings) -> None:
    args = [
        "--knowledge",
        str(real_settings.knowledge_dir),
        "--index",
        str(real_settings.index_dir),
    ]
    r = run(["index", "check", *args])
    assert r.returncode == 0 and "index OK" in r.stdout, r.stderr
    r = run(["index", "build", *args])
    assert r.returncode == 0 and "index up to date" in r.stdout, r.stderr


@pytest.mark.slow
def test_eval_command(real_settings: Settings, tmp_path: Path) -> None:
    # The report's layout, its halves and targets, on a dozen real-world cases (test_eval.py
    # holds every whole suite to its floors).
    real = yaml.safe_load((ROOT / "tests" / "eval" / "real_world.yaml").read_text())
    suite = tmp_path / "some_real_world.yaml"
    suite.write_text(
        yaml.safe_dump({"held_out_targets": real["held_out_targets"], "cases": real["cases"][::18]})
    )
    r = run(["eval", "--index", str(real_settings.index_dir), "--cases", str(suite)])
    assert r.returncode == 0, r.stdout + r.stderr
    for metric in ("hit_at_1", "hit_at_3", "mrr", "fact_accuracy", "decline_precision"):
        assert metric in r.stdout
    assert "held-out" in r.stdout and "target 0.90" in r.stdout  # goals beside today's figures


def test_the_readme_names_only_commands_and_options_that_exist() -> None:
    """README's command-line block against the click commands ``ban-bot --help`` shows."""
    import click

    from bot.cli import cli

    block = (ROOT / "README.md").read_text().split("From the command line", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    named: set[str] = set()
    for line in block.splitlines():
        usage = line.split("#", 1)[0].removeprefix("ban-bot ").strip()
        for alternative in usage.split(" | "):
            words = alternative.replace("[", " ").replace("]", " ").split()
            command: click.Command = cli
            path = []
            while isinstance(command, click.Group) and words and words[0] in command.commands:
                path.append(words[0])
                command = command.commands[words.pop(0)]
            assert path, f"README names no ban-bot command in {line!r}"
            named.add(path[0])
            options = {opt for p in command.params for opt in p.opts}
            for word in words:
                if word.startswith("--"):
                    assert word in options, f"ban-bot {' '.join(path)} has no {word}"
    assert named == set(cli.commands), "README's command list and ban-bot's differ"
