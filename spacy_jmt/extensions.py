"""Registering the Doc extensions of spacy-jmt."""

import warnings
from typing import Callable

from spacy.tokens import Doc


def register_doc_extension(name: str, getter: Callable, setter: Callable) -> None:
    """Register `Doc._.<name>` with this getter and setter (idempotent).

    If another package registered an extension of that name, it is replaced with a warning.

    name (str): The extension name.
    getter (Callable): Reads the value from the Doc.
    setter (Callable): Writes the value to the Doc.
    """
    if Doc.has_extension(name):
        current = Doc.get_extension(name)
        current_getter = current[2] if current else None
        if (
            getattr(current_getter, "__qualname__", None) == getter.__qualname__
            and getattr(current_getter, "__module__", None) == getter.__module__
        ):
            return
        warnings.warn(
            f"Replacing the existing Doc extension {name!r} with spacy-jmt's", stacklevel=3
        )
    Doc.set_extension(name, getter=getter, setter=setter, force=True)
