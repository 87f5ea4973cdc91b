"""The Docker image, checked without a Docker engine: what the Dockerfile says, what the Makefile
recipes it runs do, and the entrypoint and health check run as the container runs them."""

from __future__ import annotations

import http.server
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mock_slack import MockWebApi

from bot.config import ROOT, Settings
from bot.knowledge import load_knowledge

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BASE_IMAGE = "python:3.11-slim-bookworm"
IMAGE_MAKE_ARGS = ["VENV=/opt/venv", "EXTRAS="]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(path: Path) -> list[list[Instruction]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), by stage."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[list[Instruction]] = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(args.split()))
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, "the Dockerfile must start with FROM"
        stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE)


def of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def test_multi_stage_on_the_slim_base(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2
    froms = [stage[0].args.split() for stage in stages]
    assert all(f[0] == BASE_IMAGE and f[1].upper() == "AS" for f in froms), froms
    build_name = froms[0][2]
    runtime = stages[-1]
    copies_from_build = [c for c in of(runtime, "COPY") if c.startswith(f"--from={build_name} ")]
    assert any("/opt/venv" in c for c in copies_from_build)
    assert any(c.split()[-1] == "/app" for c in copies_from_build)
    # Nothing is installed or built in the final stage: it only copies the build stage's results.
    assert not any("make" in run or "pip" in run for run in of(runtime, "RUN"))


def test_install_and_index_come_only_from_the_makefile(stages: list[list[Instruction]]) -> None:
    build = stages[0]
    runs = [shlex.split(r) for r in of(build, "RUN")]
    make_runs = [r for r in runs if r[0] == "make"]
    assert make_runs == [["make", "install", *IMAGE_MAKE_ARGS], ["make", "index", *IMAGE_MAKE_ARGS]]
    for stage in stages:
        for run in of(stage, "RUN"):
            assert "pip" not in run and "ban-bot" not in run and "torch" not in run, run
            assert " -f " not in f" {run} " and "--file" not in run, run
    # The Makefile make reads is the repository's own, copied into the working directory first.
    workdir = of(build, "WORKDIR")[0]
    copied = next(c.split() for c in of(build, "COPY") if "Makefile" in c.split())
    assert copied[-1] in ("./", ".", workdir, workdir + "/")
    keywords = [i.keyword + " " + i.args for i in build]
    assert keywords.index("COPY " + " ".join(copied)) < keywords.index(
        "RUN make install " + " ".join(IMAGE_MAKE_ARGS)
    )
    # CPU-only torch: the wheel index is a build argument, declared before the install.
    arg = next(a for a in of(build, "ARG") if a.startswith("PIP_EXTRA_INDEX_URL="))
    assert arg == "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu"
    assert keywords.index("ARG " + arg) < keywords.index(
        "RUN make install " + " ".join(IMAGE_MAKE_ARGS)
    )


def make_dry_run(*args: str) -> list[str]:
    r = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_the_image_recipes_skip_dev_tools_and_developers_keep_them() -> None:
    image = make_dry_run("install", *IMAGE_MAKE_ARGS)
    assert "test -x /opt/venv/bin/python || python3 -m venv /opt/venv" in image
    assert "/opt/venv/bin/pip install --quiet torch==2.13.0" in image
    assert "/opt/venv/bin/pip install --quiet -e '.'" in image
    developer = make_dry_run("install")
    assert ".venv/bin/pip install --quiet -e '.[dev]'" in developer
    # Otherwise the same recipe, line for line.
    assert developer == [
        line.replace("/opt/venv", ".venv").replace("-e '.'", "-e '.[dev]'") for line in image
    ]
    assert make_dry_run("-o", "install", "index", *IMAGE_MAKE_ARGS) == [
        "/opt/venv/bin/ban-bot index build"
    ]


def test_the_index_step_fails_the_build_on_invalid_knowledge(
    mini_knowledge: Path, tmp_path: Path
) -> None:
    path = mini_knowledge / "mini.yaml"
    path.write_text(path.read_text().replace("category: authority", "category: nonsense"))
    r = subprocess.run(
        # -o install: the developer's virtualenv stands in for the image's, as installed.
        ["make", "--no-print-directory", "-o", "install", "index"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "BAN_BOT_KNOWLEDGE_DIR": str(mini_knowledge),
            "BAN_BOT_INDEX_DIR": str(tmp_path / "index"),
        },
        timeout=120,
    )
    assert r.returncode != 0
    assert "Error: " in r.stderr and "mini.yaml" in r.stderr and "'ofac-designations'" in r.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_runs_as_a_non_root_user(stages: list[list[Instruction]]) -> None:
    runtime = stages[-1]
    users = of(runtime, "USER")
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    keywords = [i.keyword for i in runtime]
    assert len(keywords) - 1 - keywords[::-1].index("USER") < keywords.index("ENTRYPOINT")


def healthcheck_command(stages: list[list[Instruction]]) -> list[str]:
    [check] = of(stages[-1], "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert isinstance(argv, list) and argv[:2] == ["python", "-c"]
    return [sys.executable, *argv[1:]]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(server.server_address[1]), handler
    server.shutdown()
    server.server_close()


def test_healthcheck_probes_healthz_on_port(
    stages: list[list[Instruction]], health_server: tuple[int, type[_Health]]
) -> None:
    argv = healthcheck_command(stages)
    assert "/healthz" in argv[-1] and "127.0.0.1" in argv[-1]
    port, handler = health_server
    env = {k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"}

    def check(**extra: str) -> int:
        return subprocess.run(
            argv, env={**env, **extra}, capture_output=True, timeout=30
        ).returncode

    assert check(PORT=str(port)) == 0
    handler.status = 503  # the index is still loading, or failed to
    assert check(PORT=str(port)) != 0
    assert check(PORT=str(free_port())) != 0  # nothing listening
    # Socket Mode serves no HTTP: the check passes there.
    assert check(PORT=str(free_port()), SLACK_APP_TOKEN="xapp-1-test") == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_entrypoint_is_the_checked_script(stages: list[list[Instruction]]) -> None:
    runtime = stages[-1]
    [entrypoint] = of(runtime, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/app/docker/entrypoint.sh"]
    assert any(
        c.split()[-2:] == ["docker/entrypoint.sh", "/app/docker/entrypoint.sh"]
        for c in of(runtime, "COPY")
    )
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    r = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


FAKE_BAN_BOT = """#!/bin/sh
echo "$*" >> "$RECORD"
if [ "$1 $2" = "index build" ]; then exit "${FAIL_BUILD:-0}"; fi
"""


def run_entrypoint(tmp_path: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    """The entrypoint with a ``ban-bot`` on PATH that records how it is called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "ban-bot"
    fake.write_text(FAKE_BAN_BOT)
    fake.chmod(0o755)
    record = tmp_path / "calls.txt"
    record.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in ("SLACK_APP_TOKEN", "PORT")}
    r = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={**base, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.returncode, record.read_text().splitlines() if record.exists() else []


def test_entrypoint_builds_then_serves_http_on_port(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, PORT="8080") == (
        0,
        ["index build", "serve --http --port 8080"],
    )
    assert run_entrypoint(tmp_path) == (0, ["index build", "serve --http --port 3000"])
    assert run_entrypoint(tmp_path, SLACK_APP_TOKEN="") == (
        0,
        ["index build", "serve --http --port 3000"],
    )


def test_entrypoint_picks_socket_mode_with_an_app_token(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, SLACK_APP_TOKEN="xapp-1-test", PORT="8080") == (
        0,
        ["index build", "serve"],
    )


def test_entrypoint_runs_a_given_command_after_the_build(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, "ban-bot", "report", "--since", "30") == (
        0,
        ["index build", "report --since 30"],
    )


def test_entrypoint_stops_when_the_knowledge_is_invalid(tmp_path: Path) -> None:
    code, calls = run_entrypoint(tmp_path, FAIL_BUILD="1", PORT="8080")
    assert code == 1 and calls == ["index build"]


def test_container_start_end_to_end(real_settings: Settings, tmp_path: Path) -> None:
    """The entrypoint with the real ``ban-bot``, as the container starts it in HTTP mode: a
    changed knowledge folder is built into the index, then the health check turns healthy."""
    knowledge = tmp_path / "knowledge"
    shutil.copytree(real_settings.knowledge_dir, knowledge)
    index = tmp_path / "index"
    shutil.copytree(real_settings.index_dir, index)
    before = (index / "CURRENT").read_text().strip()
    edited = sorted(knowledge.glob("*.yaml"))[0]
    text = edited.read_text()
    first_question = text.index("questions:")
    edited.write_text(
        text[:first_question]
        + "questions:\n      - Is this a question a curator added after the image was built?"
        + text[first_question + len("questions:") :]
    )
    port = free_port()
    argv = healthcheck_command(parse(DOCKERFILE))
    with MockWebApi() as api:
        env = {
            **{k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"},
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "SLACK_BOT_TOKEN": "xoxb-0000-test",
            "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
            "SLACK_API_URL": api.url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "BAN_BOT_KNOWLEDGE_DIR": str(knowledge),
            "BAN_BOT_INDEX_DIR": str(index),
            "BAN_BOT_DATA_DIR": str(tmp_path / "data"),
        }
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            healthy = False
            while time.monotonic() < deadline and proc.poll() is None:
                if subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode == 0:
                    healthy = True
                    break
                time.sleep(0.5)
            assert healthy, f"never healthy (exit {proc.poll()})"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                output, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
    entries = len(load_knowledge(ROOT / "knowledge").entries)
    assert f"index built: {entries} entries" in output and "(1 embedded," in output, output
    assert (index / "CURRENT").read_text().strip() != before
    assert "xoxb-0000-test" not in output and "0123456789abcdef0123456789abcdef" not in output
