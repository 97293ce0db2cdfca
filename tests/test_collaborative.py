"""ALS's factors do not depend on how many threads fit them (recommendations.collaborative)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from recommendations.collaborative import ALS


def test_als_gives_the_same_factors_bit_for_bit_on_one_thread_or_several():
    # The nightly fit uses every core; a re-run on another machine must train the same ranker.
    history = sp.random(3000, 800, density=0.01, format="csr", random_state=3, dtype=np.float32)
    inputs = SimpleNamespace(history=history)
    one = ALS(factors=16, iterations=4, threads=1).fit(inputs)
    several = [ALS(factors=16, iterations=4, threads=threads).fit(inputs) for threads in (2, 3, 4)]
    assert np.abs(one.users).sum() > 0 and np.abs(one.items).sum() > 0
    for fitted in several:
        assert np.array_equal(fitted.users, one.users)
        assert np.array_equal(fitted.items, one.items)
