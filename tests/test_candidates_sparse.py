"""Sparse candidate generation: the building blocks against brute force, each generator
against a dense reference (every shopper × every product) where no cap binds, known answers
where a cap does (title neighbours), and memory that does not grow with the catalog."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

import recommendations.anchors as anchors_module
import recommendations.candidates as candidates_module
import recommendations.parallel as parallel_module
import recommendations.proposals as proposals_module
import recommendations.signals as signals_module
from recommendations.candidates import CandidateLimits, Generators, title_neighbours
from recommendations.config import RecommendationConfig
from recommendations.features import sample_at
from recommendations.inner_product import InnerProductIndex
from recommendations.neighbours import (
    MIN_BLOCK_ROWS,
    block_bounds,
    nearest_neighbours,
    nearest_neighbours_among,
)
from recommendations.proposals import Bought, canonical, dense_top, dot_at, top_cells, top_entries
from recommendations.shop import inputs_as_of
from recommendations.signals import cooccurrence_matrix
from recommendations.topk import ranks_in_groups, top_in_rows
from tests.shops import START, catalog, shop

GENERATORS = ("history", "cooccurrence", "content", "new_products", "als", "ease", "popular", "country")
NONE = CandidateLimits(**dict.fromkeys(GENERATORS, 0))


# ---------------------------------------------------------------- building blocks


def brute_top(values: np.ndarray, n: int) -> set[int]:
    """Positions of the n largest values; ties: the lowest positions."""
    return set(np.argsort(-values, kind="stable")[:n].tolist())


def test_top_in_rows_keeps_each_rows_largest_and_breaks_ties_by_the_key_then_the_column():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 40, 300)
    lengths[:3] = [0, 1, 2000]  # an empty row, a short one, one far longer than the rest
    indptr = np.r_[0, np.cumsum(lengths)]
    values = rng.integers(0, 6, indptr[-1]).astype(np.float32)  # many ties
    then = rng.integers(0, 3, indptr[-1]).astype(np.float32)
    for n in (0, 1, 5, 39):
        keep = top_in_rows(indptr, values, n)
        broken = top_in_rows(indptr, values, n, then)  # ties: the higher `then` first
        for row in range(len(lengths)):
            start, stop = indptr[row], indptr[row + 1]
            assert set(np.flatnonzero(keep[start:stop]).tolist()) == brute_top(values[start:stop], n)
            order = np.lexsort((np.arange(stop - start), -then[start:stop], -values[start:stop]))
            assert set(np.flatnonzero(broken[start:stop]).tolist()) == set(order[:n].tolist())


def test_a_dense_block_proposes_what_its_sparse_form_does():
    """top_cells against top_entries: ties, negatives, zeros, disallowed and bought products,
    rows with fewer usable products than asked for, and quotas past the catalog's width."""
    rng = np.random.default_rng(5)
    dense = rng.integers(-2, 5, (70, 40)).astype(np.float32)  # many ties, negatives and zeros
    dense[3] = 0  # a row with nothing to propose
    dense[4, 1:] = -1  # a row with one
    allowed = rng.random(40) < 0.8
    purchased = sp.csr_matrix((rng.random((70, 40)) < 0.2).astype(np.float32))
    sparse = canonical(sp.csr_matrix(dense))
    for bought in (Bought(None, 40), Bought(purchased, 40)):
        for n in (0, 1, 7, 40, 60):
            expected = top_entries(sparse, n, allowed, bought)
            found = top_cells(dense, n, allowed, bought)
            assert set(zip(*map(np.ndarray.tolist, found), strict=True)) == set(
                zip(*map(np.ndarray.tolist, expected), strict=True)
            ), n
            assert len(found[0]) == len(expected[0])
    assert top_cells(np.zeros((0, 40), np.float32), 5, allowed, Bought(None, 40))[0].shape == (0,)


def test_a_dense_top_keeps_the_lowest_product_rows_of_a_tie_at_the_cut():
    import torch

    targets = np.array([2, 5, 7, 9, 11])
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0], [0.0, -1.0, 2.0, float("-inf"), 0.0]])
    users, products = dense_top(scores, targets, 2, Bought(None, 12))
    assert sorted(zip(users.tolist(), products.tolist(), strict=True)) == [(0, 5), (0, 7), (1, 7)]
    bought = Bought(sp.csr_matrix(([1.0], ([0], [5])), shape=(2, 12)), 12)
    users, products = dense_top(scores.clone(), targets, 2, bought)  # 5 bought: 7 and 9 tie next
    assert sorted(zip(users.tolist(), products.tolist(), strict=True)) == [(0, 7), (0, 9), (1, 7)]


def test_bought_pairs_of_no_shoppers_are_none():
    """A block where no shopper has a vector scans none of them for content."""
    bought = Bought(sp.csr_matrix(np.eye(3, dtype=np.float32)), 3)
    users, products = bought.pairs(np.zeros(0, dtype=np.int64))
    assert users.shape == products.shape == (0,)
    assert bought.pairs(np.array([1]))[1].tolist() == [1]


def test_cooccurrence_is_held_dense_only_when_small_and_full_enough(monkeypatch):
    full = sp.csr_matrix(np.ones((30, 30), dtype=np.float32))
    assert np.array_equal(candidates_module.dense_cooccurrence(full), full.toarray())
    assert candidates_module.dense_cooccurrence(sp.csr_matrix((30, 30), dtype=np.float32)) is None  # empty
    assert candidates_module.dense_cooccurrence(sp.eye(30, format="csr", dtype=np.float32)) is None  # 3% full
    monkeypatch.setattr(candidates_module, "DENSE_COOCCURRENCE_CELLS", 899)
    assert candidates_module.dense_cooccurrence(full) is None  # too big


def test_sample_at_reads_the_stored_value_of_each_pair_as_scipy_does():
    rng = np.random.default_rng(3)
    matrix = sp.random(60, 90, density=0.2, format="csr", random_state=4, dtype=np.float32)
    matrix.data[matrix.indptr[5] : matrix.indptr[6]] = 0  # a row with nothing stored
    matrix = canonical_copy(matrix)
    rows = rng.integers(0, 60, 5000)  # rows repeated, pairs in no order
    cols = rng.integers(0, 90, 5000)
    rows[:3], cols[:3] = 5, [0, 1, 89]
    expected = np.asarray(matrix[rows, cols]).ravel()
    assert matrix.has_canonical_format
    assert np.array_equal(sample_at(matrix, rows, cols), expected)
    assert sample_at(matrix, rows[:0], cols[:0]).shape == (0,)
    assert np.array_equal(sample_at(sp.csr_matrix((60, 90), dtype=np.float32), rows, cols), np.zeros(5000))
    # A matrix with unsorted columns or duplicates is read as scipy reads it (duplicates summed).
    messy = sp.csr_matrix((np.array([1.0, 2.0, 4.0]), np.array([3, 1, 3]), np.array([0, 3])), shape=(1, 5))
    assert not messy.has_canonical_format
    assert sample_at(messy, np.array([0, 0, 0]), np.array([3, 1, 0])).tolist() == [5.0, 2.0, 0.0]


@pytest.mark.parametrize("dimensions", [384, 32, 1])
def test_dot_at_gives_the_same_floats_whatever_the_chunk(monkeypatch, dimensions):
    # The chunk is sized for the cache; the values must be those of one einsum over all pairs.
    rng = np.random.default_rng(5)
    left = rng.standard_normal((70, dimensions), dtype=np.float32)
    right = rng.standard_normal((90, dimensions), dtype=np.float32)
    left_rows = np.sort(rng.integers(0, 70, 3000))  # grouped by shopper, as the generators ask
    right_rows = rng.integers(0, 90, 3000)
    whole = np.einsum("ij,ij->i", left[left_rows], right[right_rows], dtype=np.float32)
    monkeypatch.setattr(proposals_module, "DOT_CHUNK_CELLS", 7 * dimensions)  # many chunks, a ragged last
    chunked = dot_at(left, left_rows, right, right_rows)
    assert chunked.dtype == np.float32 and np.array_equal(chunked, whole)
    assert np.allclose(chunked, (left[left_rows] * right[right_rows]).sum(axis=1), rtol=1e-4, atol=1e-4)
    assert dot_at(left, left_rows[:0], right, right_rows[:0]).shape == (0,)


def canonical_copy(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    matrix.sum_duplicates()
    return matrix


def test_ranks_in_groups_rank_within_each_owner_and_the_earlier_pair_first_on_ties():
    owner = np.array([0, 0, 0, 2, 2, 5])
    values = np.array([0.5, 0.9, 0.5, 1.0, 3.0, -1.0])
    assert ranks_in_groups(owner, values).tolist() == [2, 1, 3, 2, 1, 1]


def test_the_inner_product_index_equals_a_full_scan_while_visiting_big_norms_first(monkeypatch):
    import recommendations.inner_product as inner_product

    monkeypatch.setattr(inner_product, "FIRST_STAGE", 7)  # several stages on a small catalog
    rng = np.random.default_rng(1)
    items = rng.standard_normal((300, 6)).astype(np.float32) * rng.pareto(1.0, (300, 1)).astype(np.float32)
    ids = np.sort(rng.choice(1000, 300, replace=False))
    queries = rng.standard_normal((25, 6)).astype(np.float32)
    excluded = (rng.integers(0, 25, 40), rng.choice(ids, 40))
    users, found, scores = InnerProductIndex(items, ids, 1000).top(queries, 12, excluded)
    full = queries @ items.T
    full[excluded[0], np.searchsorted(ids, excluded[1])] = -np.inf
    for q in range(25):
        assert np.allclose(np.sort(scores[users == q]), np.sort(full[q])[-12:], atol=1e-5)
        assert set(found[users == q].tolist()) == set(ids[np.argsort(-full[q])[:12]].tolist())


def test_nearest_neighbours_are_each_products_closest_targets_itself_included():
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((40, 5)).astype(np.float32)
    targets = rng.random(40) < 0.6
    for cells in (1, 30, 10_000):  # a row at a time, a few rows, everything at once
        index = nearest_neighbours(vectors, targets, 4, cells=cells)
        for row in range(40):
            scores = np.where(targets, vectors @ vectors[row], -np.inf)
            assert set(index[row].indices.tolist()) == brute_top(scores, 4)
            assert np.allclose(index[row].data, scores[index[row].indices])


def test_several_target_sets_from_one_pass_equal_one_pass_each():
    # The content generator's two indexes (recommendable products, the new ones among them)
    # come from one pass over the similarities; each must be what its own pass gives.
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((50, 6)).astype(np.float32)
    recommendable = rng.random(50) < 0.8
    new = recommendable & (rng.random(50) < 0.3)
    nothing = np.zeros(50, dtype=bool)
    for cells in (1, 45, 10_000):
        together = nearest_neighbours_among(vectors, [recommendable, new, nothing], 5, cells=cells)
        for index, targets in zip(together, [recommendable, new, nothing], strict=True):
            alone = nearest_neighbours(vectors, targets, 5, cells=cells)
            assert (index != alone).nnz == 0 and index.shape == alone.shape
            assert np.array_equal(index.indices, alone.indices) and np.array_equal(index.indptr, alone.indptr)
        assert set(together[1].indices.tolist()) <= set(np.flatnonzero(new).tolist())
    assert nearest_neighbours_among(vectors, [], 5) == []


def test_a_set_shares_a_pass_with_the_same_values_as_its_own_pass():
    """Sharing a pass changes a set's row blocks (they follow the union's width) and its
    columns' neighbours in the product: neither may change a similarity's last bit, or the
    shared index could order near-ties differently from its own pass. 384 dimensions, as
    the nightly's titles; the shared pass's blocks of 37 rows would leave one row alone
    (MKL multiplies 1-3 rows another way: without MIN_BLOCK_ROWS this test fails)."""
    rng = np.random.default_rng(21)
    vectors = rng.standard_normal((1_000, 384)).astype(np.float32)
    recommendable = rng.random(1_000) < 0.9
    new = recommendable & (rng.random(1_000) < 0.3)
    cells = 37 * int(recommendable.sum())
    shared = nearest_neighbours_among(vectors, [recommendable, new], [12, 5], cells=cells)
    for index, targets, m in zip(shared, [recommendable, new], [12, 5], strict=True):
        alone = nearest_neighbours(vectors, targets, m, cells=cells)
        assert np.array_equal(index.indptr, alone.indptr) and np.array_equal(index.indices, alone.indices)
        assert index.data.tobytes() == alone.data.tobytes()
    with pytest.raises(ValueError, match="2 neighbour counts for 3 target sets"):
        nearest_neighbours_among(vectors, [recommendable, new, new], [12, 5], cells=cells)


def test_only_the_rows_asked_for_are_computed_with_the_full_pass_values():
    """The ranker's training reads the neighbour rows of its sampled shoppers' products only:
    those rows, computed alone, must be the full pass's bit for bit, even two of them (padded
    to MIN_BLOCK_ROWS rows, which MKL multiplies the same way), and the others empty."""
    rng = np.random.default_rng(22)
    vectors = rng.standard_normal((600, 384)).astype(np.float32)
    recommendable = rng.random(600) < 0.9
    new = recommendable & (rng.random(600) < 0.3)
    full = nearest_neighbours_among(vectors, [recommendable, new], [9, 4])
    for rows in (np.array([7, 311]), np.sort(rng.choice(600, 150, replace=False)), np.arange(600)):
        some = nearest_neighbours_among(vectors, [recommendable, new], [9, 4], rows=rows)
        for a, b in zip(some, full, strict=True):
            for row in range(600):
                if row in rows:
                    assert np.array_equal(a[row].indices, b[row].indices)
                    assert a[row].data.tobytes() == b[row].data.tobytes()
                elif row >= MIN_BLOCK_ROWS:  # the first rows pad a short set
                    assert a[row].nnz == 0


def test_no_row_block_is_left_with_fewer_than_the_fewest_rows():
    assert block_bounds(100, 30) == [(0, 30), (30, 60), (60, 100)]  # 10 rows left: joined
    assert block_bounds(100, 25) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert block_bounds(120, 30)[-1] == (90, 120)
    assert block_bounds(5, 16) == [(0, 5)]  # fewer rows than that in all: one block
    assert block_bounds(0, 16) == []
    for n, step in ((1_003, 16), (1_000, 37), (17, 16)):
        bounds = block_bounds(n, step)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        assert min(stop - start for start, stop in bounds) >= min(n, MIN_BLOCK_ROWS)


def test_neighbour_blocks_side_by_side_give_the_serial_loops_values_bit_for_bit(monkeypatch):
    # The blocks of rows run on worker threads (recommendations.parallel); each is the same
    # product of the same shapes as in a serial loop, so the indexes must be identical, not
    # merely close: the ranker's candidates and the published tables are built from them.
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((300, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    recommendable = rng.random(300) < 0.9
    new = recommendable & (rng.random(300) < 0.2)
    cells = 17 * int(recommendable.sum())  # 17 rows a block: 17 blocks, the last 11 rows joined
    side_by_side = nearest_neighbours_among(vectors, [recommendable, new], 8, cells=cells)
    monkeypatch.setattr(parallel_module, "MAX_WORKERS", 1)  # one block after the other
    serial = nearest_neighbours_among(vectors, [recommendable, new], 8, cells=cells)
    for a, b in zip(side_by_side, serial, strict=True):
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert a.data.tobytes() == b.data.tobytes()


def test_cooccurrence_rows_keep_their_strongest_neighbours_under_a_pairs_budget(monkeypatch):
    rng = np.random.default_rng(3)
    sessions, rows = rng.integers(0, 60, 400).astype(str), rng.integers(0, 30, 400)
    pairs = pl.DataFrame({"session_key": sessions, "row": rows})
    full = cooccurrence_matrix(pairs, 30).toarray()
    monkeypatch.setattr(signals_module, "COOCCURRENCE_PAIRS", 30 * 4)
    monkeypatch.setattr(signals_module, "COOCCURRENCE_MIN_NEIGHBORS", 1)
    capped = cooccurrence_matrix(pairs, 30)
    assert np.diff(capped.indptr).max() == 4  # 4 neighbours a product: 120 pairs in all
    for row in range(30):
        kept = capped[row].indices
        assert np.allclose(capped[row].data, full[row, kept])  # the values are not approximated
        assert set(kept.tolist()) == brute_top(full[row], 4) & set(np.flatnonzero(full[row]).tolist())


# ---------------------------------------------------------------- the generators


@pytest.fixture(scope="module")
def small_shop():
    """40 shoppers in two countries viewing and buying 50 products over 60 days; p0040-p0044
    listed in the last 10 days, p0049 never recommendable."""
    as_of = START + timedelta(days=60)
    listed = {f"p{i:04d}": as_of - timedelta(days=10) for i in range(40, 45)}
    products, vectors = catalog(50, seed=7, listed=listed)
    products = products.with_columns(is_recommendable=pl.col("product_id") != "p0049")
    rng = np.random.default_rng(7)
    rows = []
    for u in range(40):
        for n in range(int(rng.integers(2, 12))):
            product = int(rng.integers(0, 45 if n % 3 else 30))
            at = START + timedelta(days=int(rng.integers(0, 59)), hours=n)
            kind = "purchase" if rng.random() < 0.6 else "view"
            rows.append((f"u{u:02d}", f"s{u}-{n // 3}", f"p{product:04d}", kind, at, "UK" if u % 3 else "FR"))
    inputs = inputs_as_of(shop(rows, products, vectors), as_of, RecommendationConfig())
    return inputs, Generators.fit(inputs, CandidateLimits())


def dense_scores(generators: Generators, name: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(scores, tie-break) over every product, as the generator defines them."""
    inputs = generators.inputs
    history = inputs.history[rows].toarray()
    if name == "history":
        return history, inputs.popularity
    if name == "cooccurrence":
        return history @ inputs.cooccurrence.toarray(), None
    if name in ("content", "new_products"):
        return inputs.user_matrix[rows] @ inputs.product_matrix.T, None
    if name == "als":
        return generators.als.users[rows] @ generators.als.items.T, None
    if name == "ease":
        scores = np.zeros((len(rows), inputs.products.height), dtype=np.float32)
        scores[:, generators.ease.kept] = generators.ease.x[rows] @ generators.ease.weights
        return scores, None
    if name == "popular":
        return np.broadcast_to(generators.popular, (len(rows), len(generators.popular))), inputs.popularity
    country = generators.user_country[rows]
    by_country = generators.country_popularity[np.maximum(country, 0)] * (country >= 0)[:, None]
    return by_country, generators.popular


def dense_proposals(generators: Generators, name: str, rows: np.ndarray, exclude_bought: bool) -> set:
    """The reference: every shopper scored against every product, the top few of the
    allowed ones (ties: the tie-break's higher value, then the lower product row)."""
    inputs = generators.inputs
    n = getattr(generators.limits, name)
    scores, then = dense_scores(generators, name, rows)
    allowed = np.broadcast_to(inputs.recommendable, scores.shape).copy()
    if exclude_bought:
        allowed &= inputs.purchased[rows].toarray() == 0
    if name == "new_products":
        allowed &= generators.new_product
    if name in ("content", "new_products"):
        allowed &= inputs.has_vector[rows][:, None]
    positive_only = name not in ("content", "new_products", "als")
    out = set()
    for i, row in enumerate(rows):
        usable = np.flatnonzero(allowed[i] & ((scores[i] > 0) if positive_only else True))
        tie = np.zeros(len(usable)) if then is None else -then[usable]
        best = usable[np.lexsort((usable, tie, -scores[i][usable]))][:n]
        out |= {(int(row), int(p)) for p in best}
    return out


def proposals(generators: Generators, rows: np.ndarray, exclude_bought: bool) -> set:
    found = generators.propose(rows, exclude_bought)
    return set(zip(found.users.tolist(), found.products.tolist(), strict=True))


def with_cooccurrence(generators: Generators, held: str) -> Generators:
    """The small shop's co-occurrence is held dense (small and full): `sparse` takes it away."""
    assert generators.cooccurrence_dense is not None
    return generators if held == "dense" else replace(generators, cooccurrence_dense=None)


@pytest.mark.parametrize("exclude_bought", [False, True], ids=["repurchase", "new_items"])
@pytest.mark.parametrize(
    ("name", "held"), [(name, "dense") for name in GENERATORS] + [("cooccurrence", "sparse")]
)
def test_each_sparse_generator_equals_the_dense_reference_where_no_cap_binds(
    small_shop, name, held, exclude_bought
):
    inputs, fitted = small_shop
    rows = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    only = replace(
        with_cooccurrence(fitted, held), limits=replace(NONE, **{name: getattr(CandidateLimits(), name)})
    )
    assert proposals(only, rows, exclude_bought) == dense_proposals(only, name, rows, exclude_bought)


@pytest.mark.parametrize("exclude_bought", [False, True], ids=["repurchase", "new_items"])
def test_dense_and_sparse_cooccurrence_give_the_same_candidates_bit_for_bit(small_shop, exclude_bought):
    inputs, fitted = small_shop
    rows = np.arange(inputs.history.shape[0])
    dense = fitted.propose(rows, exclude_bought)
    sparse = with_cooccurrence(fitted, "sparse").propose(rows, exclude_bought)
    assert np.array_equal(dense.users, sparse.users) and np.array_equal(dense.products, sparse.products)
    assert dense.signals["cooccurrence"].any()
    for name, values in sparse.signals.items():
        assert np.array_equal(dense.signals[name], values), name


@pytest.mark.parametrize("held", ["dense", "sparse"])
def test_the_signals_at_each_pair_are_the_dense_scores_there(small_shop, held):
    inputs, generators = small_shop
    generators = with_cooccurrence(generators, held)
    rows = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    found = generators.propose(rows, exclude_bought=False)
    at = np.searchsorted(rows, found.users)
    for feature, name in [
        ("history_weight", "history"),
        ("cooccurrence", "cooccurrence"),
        ("content", "content"),
        ("als", "als"),
        ("ease", "ease"),
        ("country_popularity", "country"),
    ]:
        dense, _ = dense_scores(generators, name, rows)
        assert np.allclose(found.signals[feature], dense[at, found.products], atol=1e-5), feature


def test_content_from_title_neighbours_equals_the_scan_when_they_hold_every_target(small_shop, monkeypatch):
    """Forced onto the large-catalog path with every product's neighbours kept and a pool as
    large as the catalog, content (new products too) proposes what the exact scan does."""
    inputs, _ = small_shop
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 0)
    monkeypatch.setattr(candidates_module, "CONTENT_POOL", 50)
    rows = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    for name in ("content", "new_products"):
        limits = replace(NONE, content_neighbors=50, **{name: getattr(CandidateLimits(), name)})
        generators = Generators.fit(inputs, limits)
        assert isinstance(generators.similar if name == "content" else generators.similar_new, sp.csr_matrix)
        for exclude_bought in (False, True):
            assert proposals(generators, rows, exclude_bought) == dense_proposals(
                generators, name, rows, exclude_bought
            )


def test_content_cut_from_shared_title_neighbours_is_the_generators_own_index(small_shop, monkeypatch):
    """The publish computes the nearest titles once with room for similar products (k + 1 a
    product); content keeps its `content_neighbors` of them: the index, and so the proposals,
    it would have built with its own pass."""
    inputs, _ = small_shop
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 0)
    limits = replace(NONE, content=5, content_neighbors=4)
    titles = title_neighbours(inputs, limits, k=9)
    assert np.diff(titles.recommendable.indptr).min() == 10  # k + 1 > content_neighbors
    assert titles.new is None  # no quota for new products: content needs no index over them
    own, shared = Generators.fit(inputs, limits), Generators.fit(inputs, limits, titles=titles)
    assert np.diff(shared.similar.indptr).max() == 4
    assert (own.similar != shared.similar).nnz == 0 and (own.similar.indices == shared.similar.indices).all()
    rows = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    assert proposals(own, rows, False) == proposals(shared, rows, False)
    assert title_neighbours(inputs, replace(limits, content_neighbors=12), k=9).recommendable.indptr[1] == 12
    with pytest.raises(ValueError, match="fewer than"):
        Generators.fit(inputs, replace(limits, content_neighbors=11), titles=titles)
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 5_000)
    assert title_neighbours(inputs, limits, k=9) is None  # a small catalog: content scans every target


def test_content_over_new_products_cut_from_the_shared_pass_is_the_generators_own_index(
    small_shop, monkeypatch
):
    """Past CONTENT_SCAN new products, the publish's one pass over the similarities also
    gives content's index over the new products: the very index (and proposals) of
    content's own pass, bit for bit."""
    inputs, _ = small_shop
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 0)
    limits = replace(NONE, content=5, new_products=3, content_neighbors=4)
    titles = title_neighbours(inputs, limits, k=9)
    assert titles.new is not None and np.diff(titles.new.indptr).max() == 4
    assert set(titles.new.indices.tolist()) <= set(np.flatnonzero(titles.new_targets).tolist())
    own, shared = Generators.fit(inputs, limits), Generators.fit(inputs, limits, titles=titles)
    for a, b in ((own.similar_new, shared.similar_new), (own.similar, shared.similar)):
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert a.data.tobytes() == b.data.tobytes()
    rows = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    assert proposals(own, rows, True) == proposals(shared, rows, True)
    # Neighbours of other new products (another window) are refused, not silently used.
    with pytest.raises(ValueError, match="other new products"):
        Generators.fit(inputs, replace(limits, new_product_days=1), titles=titles)


def test_generators_fitted_for_some_shoppers_propose_for_them_what_the_full_fit_does(small_shop, monkeypatch):
    """The ranker's training fits the generators for its sampled shoppers: on the
    large-catalog path their content indexes hold only those shoppers' products' rows, and
    the proposals and every signal must be the full fit's, bit for bit. Other shoppers are
    refused, not proposed for from a partial index."""
    inputs, _ = small_shop
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 0)
    limits = replace(CandidateLimits(), als=0, ease=0, content_neighbors=6)
    returning = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    sampled = returning[::3]
    full, some = Generators.fit(inputs, limits), Generators.fit(inputs, limits, shoppers=sampled)
    assert some.similar.nnz < full.similar.nnz  # rows were left out
    for exclude_bought in (False, True):
        a, b = full.propose(sampled, exclude_bought), some.propose(sampled, exclude_bought)
        assert np.array_equal(a.users, b.users) and np.array_equal(a.products, b.products)
        assert all(a.signals[name].tobytes() == b.signals[name].tobytes() for name in a.signals)
    with pytest.raises(ValueError, match="fitted for other shoppers"):
        some.propose(returning[1:2], exclude_bought=False)


def test_title_neighbours_bring_a_new_product_to_the_shopper_of_its_twin(monkeypatch):
    """The large-catalog path, where it approximates: a new product nobody bought reaches the
    shopper who bought the product with (nearly) the same title vector, through the neighbours
    of that purchase restricted to new products."""
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 0)
    as_of = START + timedelta(days=30)
    products, vectors = catalog(30, seed=11, listed={"p0029": as_of - timedelta(days=2)})
    twin = np.asarray(vectors["vector"][3].to_list(), dtype=np.float32) + 0.01
    is_new = pl.col("product_id") == "p0029"
    twin_vector = pl.when(is_new).then(pl.lit(twin.tolist())).otherwise(pl.col("vector"))
    vectors = vectors.with_columns(vector=twin_vector)
    rows = [("u1", "b1", "p0003", "purchase", START + timedelta(days=20), "UK")]
    rows += [(f"g{i}", f"g{i}", f"p{i:04d}", "purchase", START + timedelta(days=5), "UK") for i in range(25)]
    inputs = inputs_as_of(shop(rows, products, vectors), as_of, RecommendationConfig())
    generators = Generators.fit(inputs, replace(NONE, new_products=1, content=3, content_neighbors=3))
    u1 = inputs.users.filter(pl.col("user_id") == "u1")["user_row"][0]
    found = generators.propose(np.array([u1]), exclude_bought=True)
    ids = set(np.asarray(inputs.product_ids)[found.products].tolist())
    assert "p0029" in ids and "p0003" not in ids  # its twin, and never what u1 bought


def test_proposing_for_a_block_never_holds_shoppers_times_the_catalog():
    """100,000 products: a dense signal for 40 shoppers would be 16 MB, six of them 96 MB."""
    n_products = 100_000
    products, vectors = catalog(n_products, seed=12, dim=4)
    rng = np.random.default_rng(12)
    rows = [
        (f"u{u:02d}", f"s{u}-{n}", f"p{int(p):04d}", "purchase", START + timedelta(days=int(d)), "UK")
        for u in range(40)
        for n, (p, d) in enumerate(zip(rng.integers(0, 2000, 5), rng.integers(0, 29, 5), strict=True))
    ]
    inputs = inputs_as_of(shop(rows, products, vectors), START + timedelta(days=30), RecommendationConfig())
    generators = Generators.fit(inputs, replace(CandidateLimits(), als_factors=4, content=0, new_products=0))
    users = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    tracemalloc.start()
    found = generators.propose(users, exclude_bought=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(found.users) >= 40 * CandidateLimits().popular
    assert peak < 8_000_000, peak


def test_each_picks_anchors_are_the_history_products_it_cooccurs_with_and_resembles_most(
    small_shop, monkeypatch
):
    inputs, _ = small_shop
    monkeypatch.setattr(anchors_module, "ANCHOR_CHUNK", 2)  # several chunks of a shape, one cut short
    rng = np.random.default_rng(5)
    rows = np.arange(inputs.users.height)
    chosen = rng.integers(0, inputs.products.height, (len(rows), 12))
    picks = np.where(rng.random((len(rows), 12)) < 0.8, chosen, -1)
    together, similar = anchors_module.reason_anchors(inputs, rows, picks)
    cooccurrence = inputs.cooccurrence.toarray()
    for i, row in enumerate(rows):
        weights = inputs.history[row].toarray().ravel()
        owned = np.flatnonzero(weights)
        owned = owned[np.argsort(-weights[owned])[:20]]  # CSR's column order, as reason_anchors reads it
        for j, pick in enumerate(picks[i]):
            if pick < 0 or len(owned) == 0:
                assert together[i, j] == similar[i, j] == -1
                continue
            others = owned[owned != pick]
            co = cooccurrence[others, pick]
            expected = others[np.argmax(co)] if len(others) and co.max() > 0 else -1
            assert together[i, j] == expected
            if len(others):
                closeness = inputs.product_matrix[others] @ inputs.product_matrix[pick]
                assert similar[i, j] == others[np.argmax(closeness)]


@pytest.mark.parametrize(("n_owned", "n_picked"), [(20, 50), (3, 7), (1, 50), (20, 1), (1, 1)])
def test_stacked_title_products_are_each_shoppers_own_product_bit_for_bit(n_owned, n_picked):
    # reason_anchors relies on it: a stacked matmul of one shape makes the per-shopper call.
    rng = np.random.default_rng(n_owned * 100 + n_picked)
    anchors = rng.standard_normal((9, n_owned, 384), dtype=np.float32)
    picked = rng.standard_normal((9, n_picked, 384), dtype=np.float32)
    stacked = np.matmul(anchors, picked.transpose(0, 2, 1))
    for i in range(9):
        assert np.array_equal(stacked[i], anchors[i] @ picked[i].T)


def test_a_scanned_set_of_new_products_leaves_the_neighbour_rows_of_the_others_alone(small_shop, monkeypatch):
    """Past CONTENT_SCAN recommendable products but not past it new ones, content scans the
    new products and computes the recommendable ones' neighbours: for every product row
    (a full fit), or for the sampled shoppers' products' rows (training). The scan's target
    rows once stood in for those rows, so that only the new products' rows were computed."""
    inputs, _ = small_shop
    limits = replace(NONE, content=5, new_products=3, content_neighbors=4)
    new = candidates_module.new_products(inputs, limits)
    assert 0 < new.sum() < inputs.recommendable.sum()
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", int(new.sum()))
    expected = nearest_neighbours(inputs.product_matrix, inputs.recommendable, 4)
    full = Generators.fit(inputs, limits)
    assert isinstance(full.similar_new, InnerProductIndex)  # the new products are scanned
    assert (full.similar != expected).nnz == 0 and np.array_equal(full.similar.indices, expected.indices)
    returning = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    sampled = returning[::3]
    some = Generators.fit(inputs, limits, shoppers=sampled)
    read = np.unique(inputs.history[sampled].indices)
    computed = np.flatnonzero(np.diff(some.similar.indptr))  # `read`, padded to MIN_BLOCK_ROWS
    assert set(read.tolist()) <= set(computed.tolist()) and len(computed) < inputs.products.height
    assert (some.similar[read] != expected[read]).nnz == 0
    for exclude_bought in (False, True):
        assert proposals(full, sampled, exclude_bought) == proposals(some, sampled, exclude_bought)
