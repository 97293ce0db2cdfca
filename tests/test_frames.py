"""core.frames: `sorted_by` (the order of `DataFrame.sort`, without a copy when already sorted) and
`vector_matrix` (a vector column as one float32 matrix)."""

import random

import numpy as np
import polars as pl

from core.frames import sorted_by, vector_matrix


def test_sorted_by_gives_polars_order_and_keeps_a_sorted_frame_as_it_is():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(0, 12)
        df = pl.DataFrame(
            {
                "a": [rng.choice(["x", "y", None]) for _ in range(n)],
                "b": [rng.choice([1, 2, None]) for _ in range(n)],
                "c": list(range(n)),  # tells equal keys apart: their order must be kept
            },
            schema={"a": pl.String, "b": pl.Int64, "c": pl.Int64},
        )
        expected = df.sort(["a", "b"], nulls_last=True, maintain_order=True)
        assert sorted_by(df, ["a", "b"]).equals(expected)
        assert sorted_by(expected, ["a", "b"]) is expected  # in order already: not copied
    nan = pl.DataFrame({"f": [1.0, float("nan"), 0.5]})
    assert sorted_by(nan, ["f"]).equals(nan.sort("f", nulls_last=True, maintain_order=True))


def test_vector_matrix_reads_list_and_array_columns_as_float32_rows():
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    expected = np.array(rows, dtype=np.float32)
    for dtype in (pl.List(pl.Float64), pl.Array(pl.Float32, 3)):
        matrix = vector_matrix(pl.Series(rows, dtype=dtype))
        assert matrix.dtype == np.float32 and matrix.flags.c_contiguous and matrix.flags.writeable
        np.testing.assert_array_equal(matrix, expected)
    assert vector_matrix(pl.Series([], dtype=pl.List(pl.Float32))).shape == (0, 1)
