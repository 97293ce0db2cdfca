"""Serving: versioned, gated, atomic publish of the recommendation tables, and a reader.

Layout under the serving root (`serving_root(paths)`: `Paths.serving_uri`, SHOPGUIDE_HOME/serving
unless SHOPGUIDE_SERVING_URI names an s3:// prefix or another folder; serving/store.py):

    snapshots/<snapshot_id>/{user_recommendations,similar_products,popular_products,products}.parquet
    snapshots/<snapshot_id>/manifest.json   immutable: ids, row counts, checksums, model, config
    snapshots/<snapshot_id>/gate.json       the quality gate's verdict (written at publish)
    overlays/<overlay_id>/{user_recommendations.parquet,manifest.json}   intraday lists (overlays.py)
    CURRENT.json                            the pointer: current, previous, canary, overlay
    history.jsonl                           one line per pointer change (history/<time>.json on S3)
    .publish.lock                           flock'd by publishers around pointer updates (local only)

The storefront reads only these files, never the pipeline's DuckDB file (which a running
pipeline holds exclusively; see ../shared/STACK.md).
"""

from __future__ import annotations

from pathlib import Path

from core.settings import is_uri
from serving.errors import PublishBlocked, ServingError, SnapshotExists, SnapshotNotFound


def serving_root(paths) -> Path | str:
    """The serving root: a folder, or an object-store URI such as s3://bucket/prefix (`paths`
    is a core.settings.Paths, where it is configured). Every serving function takes either."""
    uri = paths.serving_uri
    return uri if is_uri(uri) else Path(uri)


__all__ = ["PublishBlocked", "ServingError", "SnapshotExists", "SnapshotNotFound", "serving_root"]
