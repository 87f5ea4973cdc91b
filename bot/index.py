"""Build, load and check the FAISS index and its manifest.

Layout of an index folder::

    index/CURRENT             name of the live build (replaced atomically)
    index/builds/<id>/        manifest.json, knowledge.json, rows.json, embeddings.npy,
                              vectors.faiss, model.onnx, tokenizer.json

A build is written to a temporary folder and made live by replacing ``CURRENT`` in one rename,
so a failed or killed build leaves the previous index exactly as it was. Unchanged texts reuse
the previous build's vectors; a build with nothing changed does not load the model. The query
encoder comes first (the previous build's ONNX export of the same weights, or a new export
checked against torch), and new texts are embedded with it: torch is loaded only to export, or
to embed where the model cannot be exported.

Usage::

    result = build_index(settings)            # BuildResult(changed=..., embedded=..., ...)
    loaded = load_index(settings.index_dir)   # LoadedIndex, verified against its manifest
    problems = check_index(settings)          # [] when the index is usable and up to date
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot import __version__
from bot.config import Settings
from bot.embedding import (
    Embedder,
    EmbeddingError,
    ModelSpec,
    resolve_model,
    sha256_file,
    verify_weights,
)
from bot.knowledge import KnowledgeSet, load_knowledge

FORMAT = 1
CURRENT = "CURRENT"
BUILDS = "builds"
KEEP_BUILDS = 2  # the live one and the one before it, for rollback
DATA_FILES = ("knowledge.json", "rows.json", "embeddings.npy", "vectors.faiss")
ONNX_FILES = ("model.onnx", "tokenizer.json")
# The version of bot.onnx_encoder.export_onnx's graph, recorded in the manifest: bump it when the
# export changes, and the next build exports anew instead of reusing an older export
# (2: onnxruntime's BERT fusions, faster to open and to run).
ONNX_EXPORT_VERSION = 2


class IndexLoadError(Exception):
    """The index cannot be loaded: missing, corrupt, of an unknown format, or (rollback) with no
    earlier intact build. The message is one sentence saying what to run."""


@dataclass(frozen=True)
class Row:
    """One embedded text: which entry it belongs to and what kind of text it is."""

    entry_id: str
    kind: str  # "answer" or "question"
    text: str
    sha: str


@dataclass(frozen=True)
class BuildResult:
    changed: bool
    build_id: str
    entries: int
    vectors: int
    embedded: int
    reused: int
    seconds: float
    model_loaded: bool


@dataclass(frozen=True)
class LoadedIndex:
    """A verified build: its manifest, the knowledge snapshot, rows and vectors."""

    path: Path
    manifest: dict[str, Any]
    knowledge: KnowledgeSet
    rows: tuple[Row, ...]
    embeddings: np.ndarray
    faiss_index: Any

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    @property
    def onnx_model(self) -> Path | None:
        p = self.path / "model.onnx"
        return p if self.manifest.get("query_encoder", {}).get("kind") == "onnx" else None

    @property
    def onnx_tokenizer(self) -> Path:
        return self.path / "tokenizer.json"


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _rows_for(knowledge: KnowledgeSet) -> list[Row]:
    rows: list[Row] = []
    for entry in knowledge.entries:
        for i, text in enumerate(entry.texts()):
            kind = "answer" if entry.factual and i == 0 else "question"
            rows.append(Row(entry.id, kind, text, _text_sha(text)))
    return rows


def current_build(index_dir: Path) -> Path | None:
    """The live build folder, or ``None`` when there is no index yet."""
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    if not name or "/" in name or name.startswith("."):
        raise IndexLoadError(
            f"{pointer}: does not name a build; rebuild with `ban-bot index build`."
        )
    return index_dir / BUILDS / name


def read_manifest(build: Path) -> dict[str, Any]:
    path = build / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexLoadError(f"{path} is missing; rebuild with `ban-bot index build`.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(f"{path} is corrupt; rebuild with `ban-bot index build`.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexLoadError(f"{path}: unknown index format; rebuild with `ban-bot index build`.")
    return manifest


def verify_files(build: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is present with the recorded SHA-256."""
    for name, digest in manifest.get("files", {}).items():
        path = build / name
        if not path.is_file():
            raise IndexLoadError(f"{path} is missing; rebuild with `ban-bot index build`.")
        if sha256_file(path) != digest:
            raise IndexLoadError(
                f"{path} does not match its manifest (corrupt or edited); "
                "rebuild with `ban-bot index build`."
            )


def load_index(index_dir: Path, *, verify: bool = True) -> LoadedIndex:
    """Load the live build, checking every file against the manifest first."""
    import faiss

    build = current_build(index_dir)
    if build is None:
        raise IndexLoadError(
            f"{index_dir}: no index has been built yet; run `ban-bot index build`."
        )
    manifest = read_manifest(build)
    if verify:
        verify_files(build, manifest)
    try:
        knowledge = KnowledgeSet.from_json(json.loads((build / "knowledge.json").read_text()))
        rows = tuple(Row(**r) for r in json.loads((build / "rows.json").read_text()))
        embeddings = np.load(build / "embeddings.npy", allow_pickle=False)
        index = faiss.read_index(str(build / "vectors.faiss"))
    except Exception as e:  # any damage that slipped past the hashes (verify=False)
        raise IndexLoadError(f"{build}: cannot read the index ({e}); rebuild it.") from None
    dim = manifest["model"]["dimension"]
    if index.ntotal != len(rows) or embeddings.shape != (len(rows), dim) or index.d != dim:
        raise IndexLoadError(
            f"{build}: vectors and rows disagree; rebuild with `ban-bot index build`."
        )
    return LoadedIndex(build, manifest, knowledge, rows, embeddings, index)


def _fresh_problems(manifest: dict[str, Any], knowledge: KnowledgeSet, model: str) -> list[str]:
    problems = []
    if manifest["model"]["name"] != model:
        problems.append(
            f"built with model {manifest['model']['name']!r}, but {model!r} is configured"
        )
    if manifest["knowledge_fingerprint"] != knowledge.fingerprint:
        problems.append("stale: the knowledge folder changed since the index was built")
    encoder = manifest.get("query_encoder", {})
    if encoder.get("kind") == "onnx" and encoder.get("export") != ONNX_EXPORT_VERSION:
        problems.append("its query encoder was exported by an older ban-bot; rebuild to update it")
    return problems


def check_index(settings: Settings) -> list[str]:
    """Why the index cannot be used as it is; an empty list means it is current and intact."""
    knowledge = load_knowledge(settings.knowledge_dir)
    try:
        loaded = load_index(settings.index_dir)
    except IndexLoadError as e:
        return [str(e)]
    return _fresh_problems(loaded.manifest, knowledge, settings.model)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _previous(index_dir: Path) -> LoadedIndex | None:
    """The live build if it is intact, to reuse its vectors; a damaged one is simply not reused."""
    try:
        return load_index(index_dir)
    except IndexLoadError:
        return None


def _finished_builds(index_dir: Path, *, besides: str | None) -> list[Path]:
    """Finished build folders other than ``besides``, newest first (temporary ones excluded)."""
    return sorted(
        (
            p
            for p in (index_dir / BUILDS).iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name != besides
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def _cleanup(index_dir: Path, keep: str) -> None:
    # Leftovers of interrupted builds, then all but the newest KEEP_BUILDS finished ones.
    for tmp in (index_dir / BUILDS).glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for old in _finished_builds(index_dir, besides=keep)[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class _Vectors:
    """One vector per row, in row order, and where they came from."""

    matrix: np.ndarray  # float32, (rows, dimension)
    weights_sha256: str  # of the model that made them; "injected" for a caller's embedder
    embedded: int  # texts embedded by this build; the others were reused
    model_loaded: bool


def build_index(
    settings: Settings,
    *,
    progress: bool | None = None,
    force: bool = False,
    before_swap: Callable[[Path], None] | None = None,
    embedder: Embedder | None = None,
) -> BuildResult:
    """Validate the knowledge, embed what changed, and atomically make the new build live.

    ``embedder`` replaces the configured model (tests use a deterministic one); such a build has
    no ONNX query encoder, so whoever loads it must bring the same embedder.
    ``before_swap`` runs after the new build is written and before it goes live (tests).
    """
    started = time.perf_counter()
    knowledge = load_knowledge(settings.knowledge_dir)
    index_dir = settings.index_dir
    (index_dir / BUILDS).mkdir(parents=True, exist_ok=True)
    previous = _previous(index_dir)
    if (
        previous is not None
        and not force
        and not _fresh_problems(previous.manifest, knowledge, settings.model)
    ):
        return BuildResult(
            changed=False,
            build_id=previous.build_id,
            entries=len(knowledge.entries),
            vectors=len(previous.rows),
            embedded=0,
            reused=len(previous.rows),
            seconds=time.perf_counter() - started,
            model_loaded=False,
        )

    spec = resolve_model(settings.model)
    weights = "injected" if embedder is not None else verify_weights(spec)
    # The previous build's vectors (and ONNX export) serve again only if the model is the same,
    # down to its weights (a local model folder may be retrained in place).
    reusable = (
        previous
        if previous is not None
        and previous.manifest["model"]["name"] == settings.model
        and previous.manifest["model"]["weights_sha256"] == weights
        else None
    )
    rows = _rows_for(knowledge)
    if progress is None:
        progress = sys.stderr.isatty()

    build_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    tmp = index_dir / BUILDS / f".tmp-{build_id}"
    tmp.mkdir()
    try:
        # The query encoder first (the previous build's, or exported now and checked against
        # torch): what is new is then embedded with it, so a full build loads the model once
        # (to export) and an edit does not load torch at all.
        export = _current_export(reusable)
        encoder = (
            {"kind": "injected"} if embedder is not None else _query_encoder(spec, tmp, export)
        )
        onnx = encoder["kind"] == "onnx"
        vectors = _embed_rows(
            rows,
            spec,
            weights,
            reusable,
            embedder=embedder,
            onnx=(tmp / ONNX_FILES[0], tmp / ONNX_FILES[1]) if onnx else None,
            progress=progress,
        )
        _write_data(tmp, knowledge, rows, vectors.matrix)
        _write_manifest(
            tmp,
            build_id=build_id,
            model=settings.model,
            vectors=vectors,
            encoder=encoder,
            knowledge=knowledge,
        )
        _make_live(tmp, index_dir, build_id, before_swap=before_swap)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _cleanup(index_dir, keep=build_id)
    return BuildResult(
        changed=True,
        build_id=build_id,
        entries=len(knowledge.entries),
        vectors=len(rows),
        embedded=vectors.embedded,
        reused=len(rows) - vectors.embedded,
        seconds=time.perf_counter() - started,
        # torch is loaded to embed, or to export a query encoder (none to reuse).
        model_loaded=vectors.model_loaded or (embedder is None and export is None),
    )


def _embed_rows(
    rows: list[Row],
    spec: ModelSpec,
    weights: str,
    previous: LoadedIndex | None,
    *,
    embedder: Embedder | None,
    onnx: tuple[Path, Path] | None,
    progress: bool,
) -> _Vectors:
    """A vector for every row: the previous build's where its text is unchanged, the others
    embedded now: with ``embedder`` if given, else with the build's ONNX query encoder of this
    very model (``onnx``: its model and tokenizer files), else with the model on torch."""
    cache: dict[str, np.ndarray] = {}
    if previous is not None:
        cache = {r.sha: previous.embeddings[i] for i, r in enumerate(previous.rows)}
    missing = sorted({r.text for r in rows if r.sha not in cache})
    model_loaded = False
    if missing:
        if embedder is not None:
            new = embedder.encode(missing)
        else:
            model_loaded = onnx is None
            new = _embed_texts(spec, onnx, missing, progress)
        for text, vector in zip(missing, new, strict=True):
            cache[_text_sha(text)] = vector
    return _Vectors(
        matrix=np.vstack([cache[r.sha] for r in rows]).astype(np.float32),
        weights_sha256=weights,
        embedded=len(missing),
        model_loaded=model_loaded,
    )


def _current_export(previous: LoadedIndex | None) -> LoadedIndex | None:
    """``previous`` if it holds an ONNX query encoder made by this version of the exporter."""
    if (
        previous is not None
        and previous.onnx_model is not None
        and previous.manifest["query_encoder"].get("export") == ONNX_EXPORT_VERSION
    ):
        return previous
    return None


def _embed_texts(
    spec: ModelSpec, onnx: tuple[Path, Path] | None, texts: list[str], progress: bool
) -> np.ndarray:
    """``texts`` embedded with the ONNX query encoder ``onnx`` (torch's vectors, cosine >= 0.9999:
    the export is checked against torch when it is made), or on torch where there is none."""
    from tqdm import tqdm

    encode: Callable[[list[str]], np.ndarray]
    if onnx is not None:
        from bot.onnx_encoder import OnnxEncoder

        encoder = OnnxEncoder(*onnx, cache_size=0, batch_size=64)
        encode, dimension = encoder.encode, encoder.dimension
    else:
        from bot.embedding import TorchEmbedder

        torch_model = TorchEmbedder(spec, verify=False)  # build_index checked the weights
        encode, dimension = torch_model.encode, torch_model.dimension
    batch = 64
    # Chunks of similar length, so each pads little (one long text in a chunk of short ones would
    # pad all 64 to its length: three times the work); the rows go back in the callers' order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    matrix = np.empty((len(texts), dimension), dtype=np.float32)
    with tqdm(
        total=len(texts), desc="embedding", unit="text", disable=not progress, file=sys.stderr
    ) as bar:
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            matrix[chunk] = encode([texts[i] for i in chunk])
            bar.update(len(chunk))
    return matrix


def _write_data(build: Path, knowledge: KnowledgeSet, rows: list[Row], matrix: np.ndarray) -> None:
    """The knowledge snapshot, the rows, their vectors and the flat inner-product FAISS index."""
    import faiss

    (build / "knowledge.json").write_text(json.dumps(knowledge.to_json(), ensure_ascii=False))
    (build / "rows.json").write_text(json.dumps([r.__dict__ for r in rows], ensure_ascii=False))
    np.save(build / "embeddings.npy", matrix, allow_pickle=False)
    flat = faiss.IndexFlatIP(int(matrix.shape[1]))
    flat.add(matrix)
    faiss.write_index(flat, str(build / "vectors.faiss"))


def _write_manifest(
    build: Path,
    *,
    build_id: str,
    model: str,
    vectors: _Vectors,
    encoder: dict[str, Any],
    knowledge: KnowledgeSet,
) -> None:
    """``manifest.json``: what the build is, and the SHA-256 of every file it holds."""
    files = {name: sha256_file(build / name) for name in DATA_FILES}
    if encoder["kind"] == "onnx":
        files.update({name: sha256_file(build / name) for name in ONNX_FILES})
        encoder = {**encoder, "model_sha256": files["model.onnx"]}
    rows, dimension = vectors.matrix.shape
    manifest = {
        "format": FORMAT,
        "build_id": build_id,
        "tool_version": __version__,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "name": model,
            "weights_sha256": vectors.weights_sha256,
            "dimension": int(dimension),
        },
        "query_encoder": encoder,
        "knowledge_fingerprint": knowledge.fingerprint,
        "entries": len(knowledge.entries),
        "timeline_events": len(knowledge.timeline),
        "vectors": int(rows),
        "files": files,
    }
    (build / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _make_live(
    tmp: Path, index_dir: Path, build_id: str, *, before_swap: Callable[[Path], None] | None
) -> None:
    """Flush the build to disk, move it into place and point ``CURRENT`` at it in one rename."""
    for p in tmp.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    final = index_dir / BUILDS / build_id
    os.replace(tmp, final)
    _fsync_dir(index_dir / BUILDS)
    if before_swap is not None:
        before_swap(final)
    _atomic_write_text(index_dir / CURRENT, build_id + "\n")
    _fsync_dir(index_dir)


def _query_encoder(spec: ModelSpec, out: Path, reused: LoadedIndex | None) -> dict[str, Any]:
    """Give the build a torch-free query encoder: copy the export of ``reused`` (the previous
    build, when :func:`_current_export` accepts it) or export anew."""
    if reused is not None:
        for name in ONNX_FILES:
            shutil.copy2(reused.path / name, out / name)
        return dict(reused.manifest["query_encoder"])
    try:
        from bot.onnx_encoder import export_onnx

        export_onnx(spec.path, out)
    except EmbeddingError:
        raise
    except Exception as e:  # another model architecture may not export; serve it on torch
        print(
            f"note: ONNX export failed ({e}); queries will be encoded with torch.", file=sys.stderr
        )
        for name in ONNX_FILES:
            (out / name).unlink(missing_ok=True)
        return {"kind": "torch"}
    return {"kind": "onnx", "export": ONNX_EXPORT_VERSION}


def rollback(index_dir: Path) -> str:
    """Make the previous finished build live again; returns its id."""
    live = current_build(index_dir)
    for candidate in _finished_builds(index_dir, besides=live.name if live else None):
        try:
            verify_files(candidate, read_manifest(candidate))
        except IndexLoadError:
            continue
        _atomic_write_text(index_dir / CURRENT, candidate.name + "\n")
        return candidate.name
    raise IndexLoadError(f"{index_dir}: no earlier intact build to roll back to.")
