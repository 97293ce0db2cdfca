"""Versioned ranker models on disk: SHOPGUIDE_HOME/models/ranker/<model_id>/ (LightGBM text
files and meta.json), written whole or not at all; the nightly run uses the newest model
trained with its settings, and trains one when there is none or it is too old."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from recommendations.config import RecommendationConfig
from recommendations.ranker import RankerModel, RankerSettings, fit_ranker
from recommendations.shop import ShopData


def model_root(home: Path) -> Path:
    return home / "models" / "ranker"


def latest_model(
    root: Path, settings: RankerSettings, as_of: datetime, max_age_days: float
) -> RankerModel | None:
    """The newest saved model with these settings, trained at or before `as_of` and at most
    `max_age_days` before it. A folder that cannot be read (damaged meta.json or model file)
    is passed over: the caller trains a new model rather than failing the night."""
    fresh: list[tuple[datetime, Path]] = []
    for meta_path in root.glob("ranker-*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text())
            trained = datetime.fromisoformat(meta["trained_as_of"])
        except (OSError, ValueError, KeyError):
            continue
        recent = timedelta(0) <= as_of - trained <= timedelta(days=max_age_days)
        if meta.get("settings_fingerprint") == settings.fingerprint() and recent:
            fresh.append((trained, meta_path.parent))
    from lightgbm.basic import LightGBMError  # loaded with the models, not at import

    for _, folder in sorted(fresh, reverse=True):
        try:
            return RankerModel.load(folder)
        except (OSError, ValueError, KeyError, LightGBMError):  # a damaged file; anything else is a bug
            continue
    return None


def train_and_save(
    data: ShopData, as_of: datetime, config: RecommendationConfig, settings: RankerSettings, root: Path
) -> RankerModel:
    model = fit_ranker(data, as_of, config, settings)
    model.save(root)
    return model


def model_for_run(
    data: ShopData,
    as_of: datetime,
    config: RecommendationConfig,
    settings: RankerSettings,
    root: Path,
    max_age_days: float,
) -> tuple[RankerModel, bool]:
    """(the model tonight's tables use, whether it was trained just now)."""
    model = latest_model(root, settings, as_of, max_age_days)
    if model is not None:
        return model, False
    return train_and_save(data, as_of, config, settings, root), True
