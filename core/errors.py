"""The project's own exception types: the failures it expects, detects and explains.

Code raises one of these where it detects the condition, with a message meant for a
person; code that handles a condition catches its type, never a builtin like ValueError.
That keeps the two kinds of failure apart: a `ShopguideError` is an outcome (the command
line prints its message as one line and exits 2; an asset may record it and carry on),
while anything else is a bug and keeps its traceback, instead of being swallowed as if it
were "not enough history" or an unreadable file.

Some also derive from the builtin their condition used to raise (ValueError,
FileNotFoundError, RuntimeError), so callers written against those still work.
"""

from __future__ import annotations


class ShopguideError(Exception):
    """An expected failure with a message for a person (printed without a traceback)."""


class BadInput(ShopguideError, ValueError):
    """An argument or an input file that cannot be used as given: a date outside the
    partitions, a file that is not the expected export, an empty search query."""


class ConfigError(ShopguideError, ValueError):
    """A setting that cannot work: an unknown device or search mode, a model that is not
    there, a share outside [0, 1]."""


class NotReady(ShopguideError, ValueError):
    """Something the operation reads has not been built yet (no product embeddings, no
    search index, vectors from another model): run the pipeline first."""


class MissingFile(ShopguideError, FileNotFoundError):
    """A file the operation reads does not exist (the warehouse, an import's source)."""


class NotEnoughHistory(ShopguideError, ValueError):
    """The shop's history is too short for what was asked: an evaluation split, a ranker's
    training cut-offs. A young shop meets this; it is not a bug."""
