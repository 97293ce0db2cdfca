"""What shoppers type into search: phrases per leaf category, most common first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopguide.sources.synthetic.vocabulary import BRANDS, LEAVES, _Leaf


@dataclass(frozen=True)
class Queries:
    """Every leaf's phrases in one list; leaf i owns [offset[i], offset[i] + count[i])."""

    texts: list[str]
    offset: np.ndarray
    count: np.ndarray


def build_queries() -> Queries:
    texts: list[str] = []
    offsets, counts = [], []
    for leaf in LEAVES:
        phrases = leaf_queries(leaf)
        offsets.append(len(texts))
        counts.append(len(phrases))
        texts.extend(phrases)
    return Queries(texts, np.array(offsets, dtype=np.int64), np.array(counts, dtype=np.int64))


def leaf_queries(leaf: _Leaf) -> list[str]:
    """Search phrases for a leaf, most common first (what shoppers type, lower case)."""
    nouns = [n.lower() for n in leaf.nouns]
    phrases = [nouns[0], leaf.name.lower(), *nouns[1:]]
    phrases += [f"{m.lower()} {n}" for m in leaf.materials[:3] for n in nouns[:2]]
    phrases += [f"{t.lower()} {nouns[0]}" for t in leaf.tones[:3]]
    phrases += [f"{nouns[0]} {s.lower()}" for s in leaf.specs[:2]]
    phrases += [f"{b.lower()} {nouns[0].split()[-1]}" for b in BRANDS[leaf.top][:2]]
    return list(dict.fromkeys(phrases))
