"""Vectorised draws the catalog and the simulation share (integer weights: exact, no float
edge cases at the ends of a cumulative range)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def round_price(raw: np.ndarray) -> np.ndarray:
    """Shop prices end in .99 (or .49 under 5 EUR), never below 0.49."""
    raw = np.asarray(raw, dtype=float)
    whole = np.where(raw < 5, np.round(raw * 2) / 2, np.round(raw))
    return np.round(np.maximum(whole - 0.01, 0.49), 2)


def cumulative_sampler(weights: np.ndarray) -> np.ndarray:
    """Integer cumulative weights: exact searchsorted sampling, no float edge cases."""
    return np.cumsum(np.asarray(weights, dtype=np.int64))


def draw(rng: np.random.Generator, cum: np.ndarray, base: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """For each row draw a position whose weight interval lies in [base, base + mass)."""
    offset = np.minimum((rng.random(len(base)) * mass).astype(np.int64), mass - 1)
    return np.searchsorted(cum, base + offset, side="right")


def categorical(rng: np.random.Generator, probabilities: Sequence[float], size: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(probabilities, dtype=float))
    return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), len(cdf) - 1)


def pick_rows(rng: np.random.Generator, cum_rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a [rows, k] cumulative-probability matrix."""
    if not len(cum_rows):
        return np.zeros(0, dtype=np.int64)
    u = rng.random(len(cum_rows)) * cum_rows[:, -1]
    return np.minimum((cum_rows < u[:, None]).sum(axis=1), cum_rows.shape[1] - 1).astype(np.int64)


def within_offsets(lengths: np.ndarray) -> np.ndarray:
    """0..n-1 inside each run of a flat array laid out by `lengths`."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts
