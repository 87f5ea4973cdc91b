"""Index round trip, incremental and no-op builds, atomicity, and checks that refuse a bad index."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_runner import ban_bot
from fakes import FakeEmbedder

from bot.config import Settings
from bot.index import (
    CURRENT,
    ONNX_EXPORT_VERSION,
    IndexLoadError,
    build_index,
    check_index,
    current_build,
    load_index,
    rollback,
)
from bot.knowledge import KnowledgeError


def _snapshot(index_dir: Path) -> dict[str, str]:
    """Every file of the live build, by content hash, plus the CURRENT pointer."""
    build = current_build(index_dir)
    assert build is not None
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in build.iterdir()}
    files[CURRENT] = (index_dir / CURRENT).read_text()
    return files


def test_round_trip(mini_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    result = build_index(mini_settings, embedder=fake_embedder)
    assert result.changed and result.entries == 4 and result.vectors == 16
    loaded = load_index(mini_settings.index_dir)
    assert loaded.faiss_index.ntotal == 16
    assert loaded.manifest["knowledge_fingerprint"] == loaded.knowledge.fingerprint
    assert loaded.manifest["model"]["dimension"] == fake_embedder.dimension
    assert set(loaded.manifest["files"]) >= {"vectors.faiss", "knowledge.json", "rows.json"}
    assert (
        loaded.knowledge.by_id["updates-cutoff"].questions[0] == "When do Kaspersky updates stop?"
    )


def test_noop_build_embeds_nothing(mini_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    calls = fake_embedder.calls
    again = build_index(mini_settings, embedder=fake_embedder)
    assert not again.changed and not again.model_loaded and again.embedded == 0
    assert fake_embedder.calls == calls


def test_incremental_build_reuses_unchanged_vectors(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    path = mini_settings.knowledge_dir / "mini.yaml"
    path.write_text(path.read_text().replace("Can I still buy", "Can I still purchase"))
    result = build_index(mini_settings, embedder=fake_embedder)
    assert result.changed and result.embedded == 1 and result.reused == 15


def test_invalid_knowledge_leaves_index_untouched(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    before = _snapshot(mini_settings.index_dir)
    path = mini_settings.knowledge_dir / "mini.yaml"
    path.write_text(path.read_text().replace("category: authority", "category: nonsense"))
    with pytest.raises(KnowledgeError):
        build_index(mini_settings, embedder=fake_embedder)
    assert _snapshot(mini_settings.index_dir) == before


def test_failure_before_swap_leaves_old_index(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    before = _snapshot(mini_settings.index_dir)

    def boom(_: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        build_index(mini_settings, embedder=fake_embedder, force=True, before_swap=boom)
    assert _snapshot(mini_settings.index_dir) == before
    assert load_index(mini_settings.index_dir).build_id == before[CURRENT].strip()


def test_build_killed_midway_leaves_old_index(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    before = _snapshot(mini_settings.index_dir)
    # A separate process, SIGKILLed at the worst moment: new build written, not yet live.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from fakes import FakeEmbedder
        from bot.config import Settings
        from bot.index import build_index
        s = Settings(knowledge_dir=Path({str(mini_settings.knowledge_dir)!r}),
                     index_dir=Path({str(mini_settings.index_dir)!r}))
        build_index(s, embedder=FakeEmbedder(), force=True,
                    before_swap=lambda _: os.kill(os.getpid(), signal.SIGKILL))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert _snapshot(mini_settings.index_dir) == before
    load_index(mini_settings.index_dir)  # still loads and verifies
    # The next build cleans the half-finished leftovers up.
    build_index(mini_settings, embedder=fake_embedder, force=True)
    assert not list((mini_settings.index_dir / "builds").glob(".tmp-*"))


def test_check_reports_missing_stale_model_and_corrupt(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    assert "no index has been built" in check_index(mini_settings)[0]
    build_index(mini_settings, embedder=fake_embedder)
    assert check_index(mini_settings) == []

    other_model = Settings(**{**mini_settings.__dict__, "model": "/models/other"})
    assert any("built with model" in p for p in check_index(other_model))

    path = mini_settings.knowledge_dir / "mini.yaml"
    original = path.read_text()
    path.write_text(original.replace("Can I still buy", "Can I still purchase"))
    assert any("stale" in p for p in check_index(mini_settings))
    path.write_text(original)

    build = current_build(mini_settings.index_dir)
    assert build is not None
    data = bytearray((build / "vectors.faiss").read_bytes())
    data[-5] ^= 0xFF
    (build / "vectors.faiss").write_bytes(bytes(data))
    problems = check_index(mini_settings)
    assert problems and "does not match its manifest" in problems[0]
    with pytest.raises(IndexLoadError, match=r"vectors\.faiss"):
        load_index(mini_settings.index_dir)


def test_truncated_manifest_is_refused(
    mini_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(mini_settings, embedder=fake_embedder)
    build = current_build(mini_settings.index_dir)
    assert build is not None
    (build / "manifest.json").write_text('{"format": 1, "fil')
    with pytest.raises(IndexLoadError, match=r"manifest\.json is corrupt"):
        load_index(mini_settings.index_dir)


def test_rollback_to_previous_build(mini_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    first = build_index(mini_settings, embedder=fake_embedder).build_id
    second = build_index(mini_settings, embedder=fake_embedder, force=True).build_id
    assert load_index(mini_settings.index_dir).build_id == second
    assert rollback(mini_settings.index_dir) == first
    assert load_index(mini_settings.index_dir).build_id == first


@pytest.mark.slow
def test_real_build_records_model_and_onnx(real_settings: Settings) -> None:
    loaded = load_index(real_settings.index_dir)
    m = loaded.manifest
    assert m["model"]["weights_sha256"] == (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
    assert m["model"]["dimension"] == 384
    assert m["query_encoder"]["kind"] == "onnx"
    assert m["query_encoder"]["model_sha256"] == m["files"]["model.onnx"]
    assert m["entries"] == len(loaded.knowledge.entries)
    assert check_index(real_settings) == []


@pytest.mark.slow
def test_an_index_from_an_older_exporter_is_exported_anew(
    real_settings: Settings, tmp_path: Path
) -> None:
    """After an upgrade that changed the ONNX export, the check says so and the next build
    exports the query encoder again, reusing every vector."""
    settings = real_settings.with_overrides(index_dir=tmp_path / "index")
    shutil.copytree(real_settings.index_dir, settings.index_dir)
    build = current_build(settings.index_dir)
    assert build is not None
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["query_encoder"].pop("export") == ONNX_EXPORT_VERSION
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert check_index(settings) == [
        "its query encoder was exported by an older ban-bot; rebuild to update it"
    ]
    result = build_index(settings, progress=False)
    assert result.changed and result.embedded == 0
    rebuilt = load_index(settings.index_dir).manifest["query_encoder"]
    assert rebuilt["kind"] == "onnx" and rebuilt["export"] == ONNX_EXPORT_VERSION
    assert check_index(settings) == []


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(mini_settings: Settings) -> None:
    """A real build on a pseudo-terminal shows tqdm's bar; piped, it prints no bars at all."""
    import pty

    args = [
        "index", "build",
        "--knowledge", str(mini_settings.knowledge_dir),
        "--index", str(mini_settings.index_dir),
    ]  # fmt: skip
    out = bytearray()

    def read(fd: int) -> bytes:
        data = os.read(fd, 65536)
        out.extend(data)
        return data

    # A pty has no size until one is set, and tqdm draws nothing at zero columns.
    command = " ".join([f"stty cols 120 rows 40; exec {sys.executable} -m bot", *args])
    pty.spawn(["sh", "-c", command], read)
    text = out.decode(errors="replace")
    assert "embedding: 100%" in text and "index built" in text

    piped = ban_bot([*args, "--force"])  # stderr is not a terminal here
    assert piped.returncode == 0 and "index built" in piped.stdout
    assert "%|" not in piped.stdout + piped.stderr


@pytest.mark.slow
def test_a_model_saved_by_this_sentence_transformers_is_exported_to_onnx(
    mini_settings: Settings, tmp_path: Path
) -> None:
    """A folder saved by the installed sentence-transformers (6.2 writes ``pooling_mode`` and no
    max_seq_length in sentence_bert_config.json) builds with an ONNX query encoder, not torch."""
    from sentence_transformers import SentenceTransformer

    from bot.answer import Engine
    from bot.embedding import bundled_model_dir
    from bot.onnx_encoder import OnnxEncoder

    saved = tmp_path / "saved-model"
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    model.save(str(saved))
    r = ban_bot(
        ["index", "build", "--knowledge", str(mini_settings.knowledge_dir),
         "--index", str(mini_settings.index_dir), "--model", str(saved)],
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "ONNX export failed" not in r.stderr
    assert load_index(mini_settings.index_dir).manifest["query_encoder"]["kind"] == "onnx"

    engine = Engine.load(mini_settings.with_overrides(model=str(saved)))
    assert isinstance(engine.encoder, OnnxEncoder)
    questions = ["when do kaspersky updates stop?", "ban?", "antivirus " * 400]
    ours = engine.encoder.encode(questions)
    theirs = model.encode(questions, normalize_embeddings=True)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999


@pytest.mark.slow
def test_another_model_from_a_local_folder(mini_settings: Settings, tmp_path: Path) -> None:
    """``--model`` / BAN_BOT_MODEL take a local sentence-transformers folder; the manifest records
    it, its weights hash and its own ONNX export, and the default then reads as a mismatch."""
    from bot.answer import Engine
    from bot.embedding import bundled_model_dir, sha256_file

    other = tmp_path / "my-model"
    shutil.copytree(bundled_model_dir(), other)
    r = ban_bot(
        ["index", "build", "--knowledge", str(mini_settings.knowledge_dir),
         "--index", str(mini_settings.index_dir)],
        env={"BAN_BOT_MODEL": str(other)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifest = load_index(mini_settings.index_dir).manifest
    assert manifest["model"]["name"] == str(other.resolve())
    assert manifest["model"]["weights_sha256"] == sha256_file(other / "model.safetensors")
    assert manifest["query_encoder"]["kind"] == "onnx"
    assert any("built with model" in p for p in check_index(mini_settings))
    engine = Engine.load(mini_settings)
    assert engine.answer("when do kaspersky updates stop?").entry_id == "updates-cutoff"
