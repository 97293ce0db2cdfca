"""The ranker's booster compiled to machine code (lleaves) for scoring a night's shoppers.

Why: scoring every shopper's candidates and explaining every pick (the reasons' occlusion,
seven more predictions per pick) are LightGBM predictions, half of the publish step's CPU at
a million shoppers. LightGBM predicts row by row through its generic tree walker; lleaves
turns the same trees into one native function through LLVM. Its trees are compiled as one
block (`fblocksize` = the number of trees), so they are summed in LightGBM's order and every
prediction is LightGBM's, bit for bit (tests/test_compiled_booster.py holds that).

Compiling costs seconds, so only a night with enough shoppers to rank pays for it: below
COMPILE_FROM_SHOPPERS (an intraday refresh of a few hundred shoppers, the tests' tiny
shops) LightGBM predicts as before. Inlining the trees makes the function about twice as
fast again and its compile ten times slower, worth it only for a large shop. Measured on
the 10M shop's 300-tree booster (300k rows, one thread): LightGBM 1.69 CPU s; compiled
0.56 s (compile 2.3 s), inlined 0.25 s (compile 26.6 s).

A saved model is scored night after night (for up to 7 days) with the same boosters, so the
machine code is kept beside it (`<model folder>/compiled/`) and loaded instead of compiled
again. A cached file is named by everything that decides the code: the booster's text, the
inlining, lleaves' and llvmlite's versions and the CPU it was compiled for (the code uses
that CPU's instructions: another machine sharing the volume compiles its own). It is written
under a temporary name and renamed into place, so a killed compile leaves no half file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from core.files import atomic_path

log = logging.getLogger(__name__)

# Shoppers with a history to rank (each is a few hundred predictions: candidates, and the
# occlusion of its k picks) from which compiling pays, and from which inlining does.
COMPILE_FROM_SHOPPERS = 2_000
INLINE_FROM_SHOPPERS = 50_000
# lleaves reads float64 rows; the float32 features are converted this many rows at a time
# (30 MB), never a whole block's at once.
CHUNK_ROWS = 100_000


class CompiledBooster:
    """A LightGBM booster's `predict` (raw scores, all its trees) as native code. With
    `cache_dir`, the code is loaded from there when this booster was compiled before on this
    kind of CPU, and kept there when it was not (`from_cache` says which)."""

    def __init__(self, booster, inline: bool = False, cache_dir: Path | None = None):
        import lleaves

        with tempfile.TemporaryDirectory(prefix="shopguide-booster-") as folder:
            model_file = Path(folder) / "booster.txt"
            booster.save_model(str(model_file))
            model = lleaves.Model(model_file=str(model_file))
            # One block of all trees: LightGBM's order of summation, hence its exact floats.
            options = {"fblocksize": max(model.num_trees(), 1), "finline": inline}
            cached = None if cache_dir is None else cache_dir / compiled_name(model_file.read_bytes(), inline)
            self.from_cache = cached is not None and cached.exists()
            _compile(model, options, cached, self.from_cache)
        self._model = model
        self.num_trees = model.num_trees()

    def predict(self, features: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """What `booster.predict(features)` gives, as float64, for a rows × features matrix."""
        out = np.empty(len(features), dtype=np.float64)
        for start in range(0, len(features), CHUNK_ROWS):
            chunk = np.ascontiguousarray(features[start : start + CHUNK_ROWS], dtype=np.float64)
            # The compiled function runs without the GIL: worker threads score side by side.
            out[start : start + len(chunk)] = self._model.predict(chunk, n_jobs=num_threads)
        return out


def for_scoring(model, policy: str, shoppers: int):
    """`model` (a RankerModel) with the policy's booster compiled when `shoppers` (those with
    a history, whom the booster ranks) are enough to pay for compiling; else `model` itself.
    The returned model is for scoring only (it is never saved)."""
    booster = model.boosters.get(policy)
    if booster is None or shoppers < COMPILE_FROM_SHOPPERS:
        return model
    cache = None if model.folder is None else model.folder / "compiled"
    compiled = CompiledBooster(booster, inline=shoppers >= INLINE_FROM_SHOPPERS, cache_dir=cache)
    return dataclasses.replace(model, boosters={**model.boosters, policy: compiled})


def _compile(model, options: dict, cached: Path | None, from_cache: bool) -> None:
    """Compile the lleaves `model`: from the code at `cached` when it is there, keeping the
    code there when it is not (best effort: a folder that cannot be written costs a warning)."""
    if cached is None:
        model.compile(**options)
    elif from_cache:
        model.compile(cache=str(cached), **options)
    else:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # lleaves writes the code to a path that does not exist yet: a temporary one.
            with atomic_path(cached) as partial:
                model.compile(cache=str(partial), **options)
        except OSError as error:  # e.g. a read-only model volume: the night goes on
            log.warning("compiled booster not kept in %s (%s): used once", cached.parent, error)
            if not model.is_compiled:
                model.compile(**options)


def compiled_name(booster_text: bytes, inline: bool) -> str:
    """The cache file's name: a digest of what decides the compiled code."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    digest = hashlib.sha256(booster_text)
    for part in (
        f"inline={inline}",
        version("lleaves"),
        version("llvmlite"),
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
    ):
        digest.update(b"\0" + part.encode())
    return f"booster-{digest.hexdigest()[:24]}.o"
