"""The torch-free fast path against the sentence-transformers reference, on the whole eval set."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest

from bot.answer import Engine
from bot.config import ROOT, Settings
from bot.embedding import TorchEmbedder, resolve_model
from bot.evaluate import DEFAULT_CASES, load_cases
from bot.onnx_encoder import OnnxEncoder
from bot.text import clean_question

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference() -> TorchEmbedder:
    return TorchEmbedder(resolve_model("bundled:all-MiniLM-L6-v2"))


def test_eval_set_embeddings_and_top3_match_the_reference(
    real_settings: Settings, real_engine: Engine, reference: TorchEmbedder
) -> None:
    assert isinstance(real_engine.encoder, OnnxEncoder)
    questions = [clean_question(c.q) for c in load_cases(DEFAULT_CASES).cases]
    answers = [real_engine.answer(q) for q in questions]
    # The vectors those answers were read from (the encoder's cache of recent questions).
    fast = np.vstack([real_engine.encoder.encode([q]) for q in questions])
    slow = reference.encode(questions)
    cosines = np.sum(fast * slow, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= 0.9999, (questions[worst], float(cosines[worst]))
    # The reference engine answers from the reference's vectors, encoded once in one batch above.
    torch_engine = Engine.load(
        real_settings, encoder=_Encoded(reference, questions, slow), clock=real_engine.clock
    )
    for q, answer in zip(questions, answers, strict=True):
        assert answer.entry_ids == torch_engine.answer(q).entry_ids, q


class _Encoded:
    """``embedder`` with the vectors of ``texts`` already computed (anything else is encoded)."""

    def __init__(self, embedder: TorchEmbedder, texts: list[str], vectors: np.ndarray) -> None:
        self.embedder = embedder
        self.vectors = dict(zip(texts, vectors, strict=True))

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if all(t in self.vectors for t in texts):
            return np.vstack([self.vectors[t] for t in texts])
        return self.embedder.encode(texts)


def test_answering_process_never_imports_torch(real_settings: Settings) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.config import Settings\n"
        "from bot.answer import Engine\n"
        f"s = Settings(index_dir=Path({str(real_settings.index_dir)!r}))\n"
        "a = Engine.load(s).answer('when do kaspersky updates stop?')\n"
        "assert a.answered, a\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'sentence_transformers'}))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
