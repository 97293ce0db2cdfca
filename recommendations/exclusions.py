"""The business-rule exclusion list (YAML, kept as data)."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.errors import BadInput

DEFAULT_FILE = Path(__file__).with_name("exclusions.yaml")


def load_exclusions(home: Path | None = None) -> dict[str, str]:
    """product_id → reason, from SHOPGUIDE_HOME/exclusions.yaml if present, else the default."""
    path = (
        home / "exclusions.yaml" if home is not None and (home / "exclusions.yaml").exists() else DEFAULT_FILE
    )
    try:
        data = yaml.safe_load(path.read_text()) or {}
        entries = data.get("products") or []
        return {str(e["product_id"]).strip().upper(): str(e.get("reason", "")) for e in entries}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise BadInput(
            f"{path} is not a valid exclusion list ({error}). Expected `products:` with items "
            "`{product_id: ..., reason: ...}`."
        ) from None
