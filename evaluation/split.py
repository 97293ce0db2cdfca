"""The time split: train on the past, test on what shoppers bought next.

    ...train...  | validation window |  test window  |
                 cutoff - W          cutoff          cutoff + W

Weights and hyper-parameters are chosen on the validation window, with training input
ending where it begins; the chosen setting is then trained on everything before the
cut-off and scored once on the test window. The test window never feeds a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import polars as pl

from recommendations.shop import assert_before


@dataclass(frozen=True)
class Window:
    """One stage: train input strictly before `start`, truth in [start, end)."""

    name: str  # "validation" or "test"
    start: datetime
    end: datetime

    def train(self, events: pl.DataFrame) -> pl.DataFrame:
        return events.filter(pl.col("occurred_at") < self.start)

    def future(self, events: pl.DataFrame) -> pl.DataFrame:
        return events.filter((pl.col("occurred_at") >= self.start) & (pl.col("occurred_at") < self.end))


@dataclass(frozen=True)
class TimeSplit:
    cutoff: date
    window_days: int

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError(f"the test window must be at least 1 day, got {self.window_days}")

    @property
    def test(self) -> Window:
        start = datetime.combine(self.cutoff, time())
        return Window("test", start, start + timedelta(days=self.window_days))

    @property
    def validation(self) -> Window:
        end = datetime.combine(self.cutoff, time())
        return Window("validation", end - timedelta(days=self.window_days), end)


def default_cutoff(last_event_at: datetime, window_days: int) -> date:
    """The latest cut-off whose test window ends with the log's last day."""
    return last_event_at.date() + timedelta(days=1) - timedelta(days=window_days)


def assert_no_leakage(train: pl.DataFrame, window: Window) -> None:
    """Training input must end before the window it is scored on begins."""
    assert_before(train, window.start, f"training input for the {window.name} window")
