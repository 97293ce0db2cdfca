"""Every drift and anomaly computation on crafted data with a known answer."""

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from reports import drift
from reports.collect import event_volume


def test_a_spike_is_flagged_and_a_stable_series_is_not():
    stable = [100, 102, 98, 101, 99, 100, 103, 97, 100, 101] * 4
    baseline = drift.trailing_robust_z(stable)
    assert not baseline.flagged.any()
    spiked = [*stable, 300]
    baseline = drift.trailing_robust_z(spiked)
    assert baseline.flagged.tolist() == [False] * len(stable) + [True]
    assert baseline.z[-1] > 20
    assert baseline.median[-1] == pytest.approx(100.0)


def test_a_drop_is_flagged_too():
    assert drift.trailing_robust_z([50] * 20 + [5]).flagged[-1]


def test_a_flat_series_tolerates_a_small_wobble_but_not_a_jump():
    # MAD is 0 on a flat series: the floors (1 unit, 5% of the level) keep z finite.
    assert not drift.trailing_robust_z([200] * 20 + [205]).flagged.any()
    assert drift.trailing_robust_z([200] * 20 + [260]).flagged[-1]
    assert not drift.trailing_robust_z([0] * 20 + [2]).flagged.any()


def test_no_flag_before_enough_history():
    baseline = drift.trailing_robust_z([1, 1000, 1, 1000, 1], min_history=7)
    assert not baseline.flagged.any() and np.isnan(baseline.z).all()


def test_only_the_trailing_window_counts():
    # A level change 40 days ago is the new normal once the window has moved past it.
    series = [10] * 40 + [100] * 40
    baseline = drift.trailing_robust_z(series, window=28)
    assert baseline.flagged[40]  # the step itself
    assert not baseline.flagged[-1]


def test_psi_of_identical_distributions_is_zero_and_of_shifted_ones_large():
    mix = {"view": 900, "add_to_cart": 80, "purchase": 20}
    assert drift.psi(mix, mix) == pytest.approx(0.0, abs=1e-12)
    assert drift.psi(mix, {k: 3 * v for k, v in mix.items()}) == pytest.approx(
        0.0, abs=1e-12
    )  # shares, not counts
    shifted = {"view": 500, "add_to_cart": 300, "purchase": 200}
    assert drift.psi(mix, shifted) > 0.2
    # A textbook value: (0.6-0.5)ln(0.6/0.5) + (0.4-0.5)ln(0.4/0.5) = 0.04055
    assert drift.psi({"a": 1, "b": 1}, {"a": 6, "b": 4}) == pytest.approx(
        0.1 * math.log(1.2) - 0.1 * math.log(0.8)
    )


def test_psi_survives_a_category_missing_on_one_side():
    value = drift.psi({"view": 100}, {"view": 90, "search": 10})
    assert math.isfinite(value) and value > 0.2


def test_daily_psi_is_zero_for_a_steady_mix_and_jumps_on_a_changed_day():
    start = date(2024, 1, 1)
    rows = []
    for d in range(30):
        mix = {"view": 90, "purchase": 10} if d < 29 else {"view": 50, "purchase": 50}
        rows += [{"day": start + timedelta(days=d), "category": k, "count": v} for k, v in mix.items()]
    result = drift.daily_psi(pl.DataFrame(rows))
    assert result["psi"][:7].null_count() == 7  # not enough history
    assert result["psi"][7:29].max() == pytest.approx(0.0, abs=1e-12)
    assert result["psi"][29] > 0.25


def test_event_volume_counts_a_missing_type_as_zero_on_days_with_other_events():
    start = date(2024, 1, 1)
    rows = [{"day": start + timedelta(days=d), "event_type": "view", "events": 100} for d in range(20)]
    rows += [{"day": start + timedelta(days=d), "event_type": "return", "events": 5} for d in range(19)]
    result = event_volume(pl.DataFrame(rows)).filter(pl.col("event_type") == "return").sort("day")
    assert result.height == 20 and result["events"][-1] == 0
    assert result["anomalous"][-1]  # 5 a day, then none: a drop


def test_embedding_drift_of_an_unchanged_version_is_nil():
    ids = ["a", "b", "c"]
    vectors = np.eye(3, dtype=np.float32)
    result = drift.embedding_drift(ids, vectors, ids, vectors)
    assert result["mean_cosine"] == pytest.approx(1.0)
    assert result["centroid_shift"] == pytest.approx(0.0, abs=1e-12)
    assert result["changed_share"] == 0.0
    assert (result["products_added"], result["products_removed"], result["products_common"]) == (0, 0, 3)


def test_embedding_drift_of_rotated_vectors():
    ids = ["a", "b"]
    old = np.array([[1.0, 0.0], [0.0, 1.0]])
    new = np.array([[0.0, 1.0], [1.0, 0.0]])  # each product now points where the other did
    result = drift.embedding_drift(ids, old, ids, new)
    assert result["mean_cosine"] == pytest.approx(0.0)
    assert result["centroid_shift"] == pytest.approx(0.0, abs=1e-12)  # same centre: drift per product only
    moved = drift.embedding_drift(ids, old, ids, -old)
    assert moved["mean_cosine"] == pytest.approx(-1.0) and moved["centroid_shift"] == pytest.approx(2.0)


def test_embedding_drift_compares_only_products_in_both_versions():
    old = np.array([[1.0, 0.0], [0.0, 1.0]])
    new = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    result = drift.embedding_drift(["a", "b"], old, ["b", "a", "c"], new)  # a and b unchanged, reordered
    assert result["mean_cosine"] == pytest.approx(1.0)
    assert (result["products_common"], result["products_added"], result["products_removed"]) == (2, 1, 0)


def test_gini_of_a_uniform_spread_is_zero_and_of_one_product_is_maximal():
    assert drift.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert drift.gini([0, 0, 0, 12]) == pytest.approx(3 / 4)  # (n-1)/n
    assert drift.gini([]) == 0.0 and drift.gini([0, 0]) == 0.0
    assert 0 < drift.gini([1, 2, 3, 10]) < 0.75


def _lists(mapping: dict[str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"user_id": u, "rank": r, "product_id": p}
            for u, items in mapping.items()
            for r, p in enumerate(items, 1)
        ]
    )


def test_churn_of_identical_lists_is_zero_and_of_disjoint_lists_one():
    a = _lists({"u1": ["p1", "p2"], "u2": ["p3", "p4"]})
    assert drift.churn(a, a, k=2) == (0.0, 2)
    b = _lists({"u1": ["p5", "p6"], "u2": ["p7", "p8"]})
    assert drift.churn(a, b, k=2) == (1.0, 2)


def test_churn_averages_one_minus_jaccard_over_users_in_both_and_respects_k():
    old = _lists({"u1": ["p1", "p2", "p9"], "u2": ["p3", "p4"], "gone": ["p1"]})
    new = _lists({"u1": ["p2", "p3", "p1"], "u2": ["p3", "p4"], "new": ["p1"]})
    # top 2: u1 {p1,p2} vs {p2,p3}: jaccard 1/3; u2 identical: 1 → churn mean(2/3, 0) = 1/3
    value, users = drift.churn(old, new, k=2)
    assert users == 2 and value == pytest.approx(1 / 3)
    assert drift.churn(old, _lists({"x": ["p1"]}), k=2) == (None, 0)


def test_coverage_and_fallback_share():
    assert drift.user_coverage(["u1", "u2", "stranger"], ["u1", "u2", "u3", "u4"]) == 0.5
    assert drift.user_coverage(["u1"], []) is None
    assert drift.catalog_coverage(["p1", "p1", "p2"], ["p1", "p2", "p3", "p4"]) == 0.5
    recs = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "source": ["personal", "fallback_global", "fallback_segment", "fallback_global", "personal"],
        }
    )
    assert drift.fallback_share(recs) == pytest.approx(1 / 3)  # only u2 has no personal item


def test_intra_list_diversity():
    ids = ["a", "b", "c", "d"]
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])  # d is not unit length: normalised
    same = _lists({"u1": ["a", "b"]})
    assert drift.intra_list_diversity(same, ids, vectors) == pytest.approx(0.0)
    orthogonal = _lists({"u1": ["a", "c"], "u2": ["b", "d"]})
    assert drift.intra_list_diversity(orthogonal, ids, vectors) == pytest.approx(1.0)
    # u1: a,b,c → pairs (1, 0, 0) → mean cos 1/3 → diversity 2/3; one-item lists are skipped.
    mixed = _lists({"u1": ["a", "b", "c"], "u2": ["a"], "u3": ["a", "unknown"]})
    assert drift.intra_list_diversity(mixed, ids, vectors) == pytest.approx(2 / 3)


def test_intra_list_diversity_does_not_depend_on_how_many_lists_are_gathered_at_once(monkeypatch):
    # The picks' vectors are gathered a block of lists at a time (a million shoppers' top 10
    # at once were 31 GB): blocks that cut anywhere give exactly the figure of one block.
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(50)]
    vectors = rng.standard_normal((50, 8))
    lists = {f"u{u:03d}": list(rng.choice(ids + ["unknown"], int(rng.integers(1, 12)))) for u in range(300)}
    recs = _lists(lists)
    whole = drift.intra_list_diversity(recs, ids, vectors)
    for lists_at_once in (1, 7, 299):
        monkeypatch.setattr(drift, "DIVERSITY_LISTS", lists_at_once)
        assert drift.intra_list_diversity(recs, ids, vectors) == whole
