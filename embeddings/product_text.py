"""What the model reads for a product, and a hash that says when it changed."""

from __future__ import annotations

import hashlib
import re

_SPACES = re.compile(r"\s+")


def _clean(value: str | None) -> str:
    return _SPACES.sub(" ", value).strip() if value else ""


def product_text(
    product_id: str,
    title: str | None,
    category_path: str | None = None,
    brand: str | None = None,
    description: str | None = None,
) -> str:
    """Title first (the one field every shop has), then whatever else the catalog knows.

    Online Retail carries only short upper-case titles: they go in as they are (the model
    is uncased) and nothing is invented around them. A product with no title at all falls
    back to its id so that it still gets a vector, though a weak one.
    """
    parts = [_clean(title) or f"product {product_id}"]
    if _clean(category_path):
        parts.append(f"category: {_clean(category_path)}")
    if _clean(brand):
        parts.append(f"brand: {_clean(brand)}")
    if _clean(description):
        parts.append(_clean(description))
    return ". ".join(parts)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
