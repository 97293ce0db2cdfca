"""The vector asset checks (assets/embeddings.vector_checks) over vectors read a block at a time."""

import numpy as np
import pyarrow as pa

from assets.embeddings import vector_checks
from embeddings.encoder import HashingEncoder
from embeddings.store import connect, vector_batches


def verdicts(batches, dimension=4) -> dict:
    return {c.check_name: c.passed for c in vector_checks(batches, dimension, "v")}


def unit(rows: int, dimension: int = 4, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_every_block_counts():
    good = [unit(3), unit(2, seed=1)]
    assert verdicts(good) == {"v_no_nan": True, "v_unit_norm": True, "v_dimension": True}
    assert verdicts([]) == {"v_no_nan": True, "v_unit_norm": True, "v_dimension": True}  # no vectors yet

    nan = unit(2, seed=2)
    nan[1, 0] = np.nan
    assert verdicts([*good, nan]) == {"v_no_nan": False, "v_unit_norm": False, "v_dimension": True}
    assert verdicts([unit(2), 2 * unit(2, seed=3)])["v_unit_norm"] is False  # only the last block is off
    assert verdicts([unit(2), unit(2, dimension=5)])["v_dimension"] is False  # mixed widths
    assert verdicts([unit(2, dimension=5)])["v_dimension"] is False


def test_vector_batches_reads_the_table_in_blocks(tmp_path):
    db = connect(tmp_path)
    vectors = HashingEncoder(dimension=8).encode([f"text {i}" for i in range(10)])
    flat = pa.array(vectors.reshape(-1), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, 8)
    db.create_table("t", pa.table({"id": list(range(10)), "vector": column}))

    blocks = list(vector_batches(db, "t", batch_rows=4))
    assert [len(b) for b in blocks] == [4, 4, 2] and all(b.dtype == np.float32 for b in blocks)

    # A scan's order is the store's: compare the rows sorted.
    def rows_sorted(x):
        return x[np.lexsort(x.T[::-1])]

    np.testing.assert_array_equal(rows_sorted(np.vstack(blocks)), rows_sorted(vectors))
    assert list(vector_batches(db, "absent")) == []
