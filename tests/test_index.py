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
from conftest import once_per_run
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
    mini_settings: Settings, tiny_model: Path
) -> None:
    """After an upgrade that changed the ONNX export, the check says so and the next build
    exports the query encoder again, reusing every vector. The export is deterministic: the same
    bytes as the build it replaces (a change to the exporter must bump ONNX_EXPORT_VERSION), and
    it leaves nothing else behind."""
    settings = mini_settings.with_overrides(model=str(tiny_model))
    assert build_index(settings, progress=False).embedded == 16
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
    rebuilt = load_index(settings.index_dir)
    assert rebuilt.manifest["query_encoder"]["kind"] == "onnx"
    assert rebuilt.manifest["query_encoder"]["export"] == ONNX_EXPORT_VERSION
    assert check_index(settings) == []
    assert (rebuilt.path / "model.onnx").read_bytes() == (build / "model.onnx").read_bytes()
    assert sorted(p.name for p in rebuilt.path.iterdir()) == sorted(p.name for p in build.iterdir())


@pytest.mark.slow
def test_an_edit_is_embedded_with_the_onnx_export_and_never_imports_torch(
    real_settings: Settings, tmp_path: Path
) -> None:
    """A curator's edit to an index that already has a query encoder of this very model embeds
    the new text with that encoder: the build neither loads torch nor exports again."""
    settings = real_settings.with_overrides(
        knowledge_dir=tmp_path / "knowledge", index_dir=tmp_path / "index"
    )
    shutil.copytree(real_settings.knowledge_dir, settings.knowledge_dir)
    _seeded(settings.index_dir, real_settings)
    added = "Is this a question a curator added this morning?"
    _add_question(settings.knowledge_dir / "timeline.yaml", "updates-cutoff", added)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.config import Settings\n"
        "from bot.index import build_index\n"
        f"s = Settings(knowledge_dir=Path({str(settings.knowledge_dir)!r}),"
        f" index_dir=Path({str(settings.index_dir)!r}))\n"
        "r = build_index(s, progress=False)\n"
        "print(r.embedded, r.model_loaded,"
        " sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'sentence_transformers'}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "False", "[]"]
    rebuilt = load_index(settings.index_dir)
    before = load_index(real_settings.index_dir)
    assert rebuilt.manifest["files"]["model.onnx"] == before.manifest["files"]["model.onnx"]
    assert check_index(settings) == []

    from bot.answer import Engine

    assert Engine.load(settings).answer(added).entry_id == "updates-cutoff"


def _add_question(path: Path, entry_id: str, question: str) -> None:
    """Add ``question`` first under ``entry_id``'s ``questions:`` in the YAML file ``path``."""
    text = path.read_text()
    at = text.index("questions:", text.index(f"id: {entry_id}\n"))
    line_start = text.rindex("\n", 0, at) + 1
    indent = " " * (at - line_start + 2)
    end = at + len("questions:")
    path.write_text(text[:end] + f"\n{indent}- {question}" + text[end:])


def _seeded(index_dir: Path, real_settings: Settings) -> Path:
    """``index_dir`` holding a copy of the real index: its ONNX export embeds what is new."""
    shutil.copytree(real_settings.index_dir, index_dir)
    return index_dir


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(
    mini_settings: Settings, real_settings: Settings, tmp_path: Path
) -> None:
    """A real build on a pseudo-terminal shows tqdm's bar; piped, it prints no bars at all."""
    import pty

    def build(index_dir: Path) -> list[str]:
        return [
            "index", "build",
            "--knowledge", str(mini_settings.knowledge_dir),
            "--index", str(_seeded(index_dir, real_settings)),
        ]  # fmt: skip

    out = bytearray()

    def read(fd: int) -> bytes:
        data = os.read(fd, 65536)
        out.extend(data)
        return data

    # A pty has no size until one is set, and tqdm draws nothing at zero columns.
    args = build(tmp_path / "on-a-terminal")
    command = " ".join([f"stty cols 120 rows 40; exec {sys.executable} -m bot", *args])
    pty.spawn(["sh", "-c", command], read)
    text = out.decode(errors="replace")
    assert "embedding: 100%" in text and "index built" in text and "(13 embedded," in text

    piped = ban_bot(build(tmp_path / "piped"))  # stderr is not a terminal here
    assert piped.returncode == 0 and "(13 embedded," in piped.stdout
    assert "%|" not in piped.stdout + piped.stderr


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT of two layers 32 wide with the bundled model's tokenizer, random weights (seeded),
    saved by the installed sentence-transformers: exported in a second where the bundled model
    takes several, for the tests about exporting any model rather than about answering well."""
    return once_per_run(tmp_path_factory, "tiny-model", _save_tiny_model)


def _save_tiny_model(folder: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from bot.embedding import bundled_model_dir

    bert = folder.with_name(f"{folder.name}-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    BertModel(config).save_pretrained(bert)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (bundled_model_dir() / name).exists():
            shutil.copy(bundled_model_dir() / name, bert / name)
    modules = [Transformer(str(bert), max_seq_length=256), Pooling(32, "mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))


@pytest.mark.slow
def test_a_model_saved_by_this_sentence_transformers_builds_with_its_own_onnx_export(
    mini_settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """BAN_BOT_MODEL takes a local folder saved by the installed sentence-transformers (6.2
    writes ``pooling_mode`` and no max_seq_length in sentence_bert_config.json): the manifest
    records it, its weights hash and its own ONNX export, which encodes like torch, and the
    default model then reads as a mismatch. Retrained in place, ``--force`` embeds and exports it
    anew."""
    import torch
    from sentence_transformers import SentenceTransformer

    from bot.answer import Engine
    from bot.embedding import sha256_file
    from bot.onnx_encoder import OnnxEncoder

    saved = tmp_path / "my-model"
    shutil.copytree(tiny_model, saved)
    model = SentenceTransformer(str(saved), device="cpu")
    assert "max_seq_length" not in json.loads((saved / "sentence_bert_config.json").read_text())
    assert json.loads((saved / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
    env = {"BAN_BOT_MODEL": str(saved)}
    build = ["index", "build", "--knowledge", str(mini_settings.knowledge_dir),
             "--index", str(mini_settings.index_dir)]  # fmt: skip
    r = ban_bot(build, env=env)
    assert r.returncode == 0, r.stderr
    assert "ONNX export failed" not in r.stderr
    manifest = load_index(mini_settings.index_dir).manifest
    assert manifest["model"]["name"] == str(saved.resolve())
    assert manifest["model"]["weights_sha256"] == sha256_file(saved / "model.safetensors")
    assert manifest["model"]["dimension"] == 32
    assert manifest["query_encoder"]["kind"] == "onnx"
    assert any("built with model" in p for p in check_index(mini_settings))

    settings = mini_settings.with_overrides(model=str(saved))
    engine = Engine.load(settings)
    assert isinstance(engine.encoder, OnnxEncoder)
    assert engine.answer("when do kaspersky updates stop?").kind in ("answer", "decline")
    questions = ["when do kaspersky updates stop?", "ban?", "antivirus " * 400]
    ours = engine.encoder.encode(questions)
    theirs = model.encode(questions, normalize_embeddings=True)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999

    torch.manual_seed(0)
    with torch.no_grad():  # retrained in place: same folder, other weights
        for weight in model.parameters():
            weight.add_(torch.randn_like(weight), alpha=0.02)
    model.save(str(saved))
    exported = manifest["files"]["model.onnx"]
    r = ban_bot([*build, "--force"], env=env)
    assert r.returncode == 0 and "(16 embedded, 0 reused)" in r.stdout, r.stdout + r.stderr
    manifest = load_index(mini_settings.index_dir).manifest
    assert manifest["model"]["weights_sha256"] == sha256_file(saved / "model.safetensors")
    assert manifest["files"]["model.onnx"] != exported
    retrained = Engine.load(settings).encoder.encode(questions)
    assert (retrained * ours).sum(axis=1).min() < 0.99  # the change is one a build must notice
    assert (retrained * model.encode(questions, normalize_embeddings=True)).sum(axis=1).min() >= (
        0.9999
    )


@pytest.mark.slow
def test_a_model_that_cannot_be_exported_is_embedded_and_served_on_torch(
    mini_settings: Settings, tmp_path: Path
) -> None:
    """A model the exporter does not take (here CLS pooling) still builds: the build says so in
    one line, embeds on torch, and questions are then encoded on torch too."""
    from bot.answer import Engine
    from bot.embedding import TorchEmbedder, bundled_model_dir

    cls = tmp_path / "cls-model"
    shutil.copytree(bundled_model_dir(), cls)
    pooling = cls / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    r = ban_bot(
        ["index", "build", "--knowledge", str(mini_settings.knowledge_dir),
         "--index", str(mini_settings.index_dir), "--model", str(cls)],
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "ONNX export failed" in r.stderr and "only mean pooling" in r.stderr
    assert "(16 embedded, 0 reused)" in r.stdout
    built = load_index(mini_settings.index_dir)
    assert built.manifest["query_encoder"] == {"kind": "torch"} and built.onnx_model is None
    engine = Engine.load(mini_settings.with_overrides(model=str(cls)))
    assert isinstance(engine.encoder, TorchEmbedder)
    assert engine.answer("when do kaspersky updates stop?").entry_id == "updates-cutoff"
