"""Serving: versioned, gated, atomic publish of the recommendation tables, and a reader.

Layout under the serving root (`serving_root(paths)` = `Paths.serving`, SHOPGUIDE_HOME/serving):

    snapshots/<snapshot_id>/{user_recommendations,similar_products,popular_products,products}.parquet
    snapshots/<snapshot_id>/manifest.json   immutable: ids, row counts, checksums, model, config
    snapshots/<snapshot_id>/gate.json       the quality gate's verdict (written at publish)
    overlays/<overlay_id>/{user_recommendations.parquet,manifest.json}   intraday lists (overlays.py)
    CURRENT.json                            the pointer: current, previous, canary, overlay
    .publish.lock                           flock'd by publishers around pointer updates

The storefront reads only these files, never the pipeline's DuckDB file (which a running
pipeline holds exclusively; see ../shared/STACK.md).
"""

from __future__ import annotations

from pathlib import Path

from serving.errors import PublishBlocked, ServingError, SnapshotExists, SnapshotNotFound


def serving_root(paths) -> Path:
    """The serving folder (`paths` is a core.settings.Paths, where it is configured)."""
    return Path(paths.serving)


__all__ = ["PublishBlocked", "ServingError", "SnapshotExists", "SnapshotNotFound", "serving_root"]
