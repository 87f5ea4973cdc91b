"""Shared fixtures.

- ``fake_embedder`` / ``mini_settings``: a deterministic bag-of-words embedder and a small
  knowledge set, for tests about plumbing (validation, atomic builds, CLI contracts).
- ``real_settings`` / ``real_engine``: the real knowledge set embedded once per session with the
  bundled model, for tests about answer quality and the surfaces.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test runs two workers on two cores: one thread each for onnxruntime, FAISS and torch,
    # or their spinning thread pools take the cores from each other (20-30 s of CPU a run).
    # The benchmark, not the tests, measures speed, with the defaults.
    os.environ.setdefault("BAN_BOT_ENCODER_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from fakes import FakeEmbedder
from hypothesis import settings as hypothesis_settings
from pg import database_url, postgres  # noqa: F401  (fixtures: a real PostgreSQL server)

from bot.config import ROOT, Settings

# Locally, fuzzing explores new examples on every run (and keeps finding bugs); in CI the same
# examples every time, so a submission's result is reproducible. Each test's own @settings
# (example counts, deadlines) still apply on top.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

FIXTURES = Path(__file__).parent / "fixtures"
MINI_KNOWLEDGE = FIXTURES / "knowledge"
REAL_KNOWLEDGE = ROOT / "knowledge"
# A fixed "today" for tests about dates: two years and two months after the updates cut-off.
FIXED_NOW = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)


# The test files that load torch and sentence-transformers (the reference model, the ONNX export):
# importing them costs each process about 6.5 s of CPU, so under pytest-xdist they all go to one
# worker. pytest-xdist's own `--dist loadgroup` cannot do it with pytest 9.2 (it renames
# `item._nodeid`, which pytest 9.2 no longer reads), so the scheduler below does.
TORCH_TEST_FILES = ("tests/test_fast_path.py", "tests/test_index.py", "tests/test_onnx_encoder.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``-n``'s load balancing, one test at a time, except that the tests in
    ``TORCH_TEST_FILES`` are one unit of work, sent first (it is the largest) to one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class TorchOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "torch" if nodeid.startswith(TORCH_TEST_FILES) else nodeid

    return TorchOnOneWorker(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the real index (built with the real model) is ``slow``, so
    ``make quick`` (``-m "not slow"``) leaves it out; tests that load the model themselves are
    marked by hand."""
    for item in items:
        if "real_index_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test reads a developer's .env or writes to the repo's data folder.
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BAN_BOT_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    # ban-bot's configure_logging (serve, the CLI) adds a handler on the stderr of the moment,
    # which pytest closes after the test: take it off again.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def mini_knowledge(tmp_path: Path) -> Path:
    """A writable copy of the small fixture knowledge set."""
    dest = tmp_path / "knowledge"
    shutil.copytree(MINI_KNOWLEDGE, dest)
    return dest


@pytest.fixture
def mini_settings(tmp_path: Path, mini_knowledge: Path) -> Settings:
    return Settings(
        knowledge_dir=mini_knowledge, index_dir=tmp_path / "index", data_dir=tmp_path / "data"
    )


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real knowledge set, embedded once per test session with the bundled model. Under
    pytest-xdist (``make test`` runs two workers) the workers share one build: the first to take
    the lock builds it, the others find it fresh and reuse it."""
    return once_per_run(tmp_path_factory, "real-index", _build_real_index)


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """The folder ``make(folder)`` fills, once per test run, even across pytest-xdist's workers:
    the first to take the lock makes it, the others wait and share it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent / name
    done = shared.with_name(f"{name}.done")
    with FileLock(f"{shared}.lock"):
        if not done.exists():
            make(shared)
            done.touch()
    return shared


def _build_real_index(index_dir: Path) -> None:
    from bot.embedding import BUNDLED_SHA256
    from bot.index import IndexLoadError, build_index, load_index

    index_dir.mkdir(parents=True, exist_ok=True)
    # A build in the repo's index/ (from `make run` or `make index`) lends the vectors of the
    # texts it shares, as it would to the next build there: the model's weights are part of what
    # the build checks before it reuses any. Without one (a fresh clone) everything is embedded.
    try:
        repo = load_index(ROOT / "index")
    except IndexLoadError:
        repo = None  # none, or damaged: not lent
    model = repo.manifest["model"] if repo is not None else {}
    bundled = (
        model.get("name") == Settings().model and model.get("weights_sha256") == BUNDLED_SHA256
    )
    fresh = not (index_dir / "CURRENT").exists()
    if fresh and repo is not None and bundled and repo.onnx_model is not None:
        shutil.copytree(repo.path, index_dir / "builds" / repo.path.name)
        (index_dir / "CURRENT").write_text(repo.path.name + "\n")
    build_index(Settings(knowledge_dir=REAL_KNOWLEDGE, index_dir=index_dir), progress=False)


@pytest.fixture(scope="session")
def real_settings(real_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        knowledge_dir=REAL_KNOWLEDGE,
        index_dir=real_index_dir,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="session")
def real_engine(real_settings: Settings) -> Iterator[object]:
    from bot.answer import Engine

    yield Engine.load(real_settings, clock=lambda: FIXED_NOW)
