"""Name -> implementation tables that modules fill by registering themselves.

A method or a dataset family is one module that calls ``REGISTRY.register(name, ...)`` at import
time; the registry imports its built-in modules the first time a name is looked up, so the list
of names lives in exactly one place and a user module can add to it (``--plugin`` style: import
it, then train). Unknown names fail with one line that lists the choices and suggests the
closest one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from utils.errors import UserError

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(UserError, ValueError):
    """A name that no module registered (a user error: the message lists the choices)."""


class Registry(Generic[T]):
    """Registered entries of one kind (methods, dataset families), in registration order."""

    def __init__(self, kind: str, option: str, builtins: Sequence[str] = ()) -> None:
        self.kind = kind  # "method", "dataset family": used in messages
        self.option = option  # the configuration option that names an entry
        self._builtins = tuple(builtins)
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name``; registering a name twice is a bug unless ``replace`` says so."""
        if not replace and name in self._entries and self._entries[name] is not entry:
            raise RuntimeError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, make: Callable[[T], T] | None = None) -> Callable[[T], T]:
        """``@REGISTRY.decorator(name)`` form of ``register``."""

        def wrap(obj: T) -> T:
            self.register(name, make(obj) if make else obj)
            return obj

        return wrap

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def names(self) -> list[str]:
        """Registered names in registration order (built-in modules imported first)."""
        self._load()
        return list(self._entries)

    def get(self, name: str) -> T:
        """The entry of ``name``; an unknown name is a one-line error with the choices and a suggestion."""
        self._load()
        if name not in self._entries:
            lower = {n.lower(): n for n in self._entries}
            close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(
                name, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"option '{self.option}': unknown {self.kind} {name!r}{hint} "
                f"(choices: {', '.join(self._entries)})"
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
