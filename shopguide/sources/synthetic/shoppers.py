"""Registered shoppers: a home country, tastes over top categories, how active they are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopguide.sources.synthetic.sampling import categorical
from shopguide.sources.synthetic.vocabulary import COUNTRY_WEIGHTS, TOP_WEIGHTS, TOPS


@dataclass
class Shoppers:
    activity_cum: np.ndarray  # float cumulative activity: heavy users have many sessions
    affinity_cum: np.ndarray  # float32 [users, tops] cumulative category preferences
    country: np.ndarray

    @property
    def size(self) -> int:
        return len(self.country)


def build_shoppers(rng: np.random.Generator, count: int) -> Shoppers:
    """Users with a home country, Dirichlet top-category tastes and skewed activity."""
    alpha = 0.35 * len(TOPS) * TOP_WEIGHTS / TOP_WEIGHTS.sum()
    affinity = rng.dirichlet(alpha, count).astype(np.float32)
    country = categorical(rng, COUNTRY_WEIGHTS, count).astype(np.int8)
    activity = rng.lognormal(0.0, 1.1, count)
    return Shoppers(np.cumsum(activity), np.cumsum(affinity, axis=1), country)
