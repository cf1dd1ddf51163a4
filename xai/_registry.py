"""Explicit, string-keyed registries of methods (here) and metrics (in ``metrics``)."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from .exceptions import UnknownNameError

if TYPE_CHECKING:
    from .adapters._base import ModelAdapter
    from .methods._base import Method

__all__ = ["METHODS", "MethodRegistry", "Registry", "register_method"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to objects, with aliases, a duplicate guard and "did you mean" errors.

    Parameters
    ----------
    kind : str
        What is registered ("method", "metric"); used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self, name: str, *, aliases: Sequence[str] = (), overwrite: bool = False
    ) -> Callable[[T], T]:
        """Class decorator registering ``obj`` under ``name`` (and ``aliases``)."""

        def decorator(obj: T) -> T:
            for key in (name, *aliases):
                if not overwrite and (key in self._items or key in self._aliases):
                    msg = (
                        f"A {self.kind} named {key!r} is already registered. "
                        "Pass overwrite=True to replace it."
                    )
                    raise ValueError(msg)
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]  # ClassVar declared on the bases
            return obj

        return decorator

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or one of its aliases."""
        self.get(name)
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        """The object registered as ``name``; UnknownNameError (with suggestions) if none."""
        if not isinstance(name, str):
            msg = f"{self.kind.capitalize()} names are str. Got {name!r} instead."
            raise UnknownNameError(msg, kind=self.kind, name=str(name), available=self.names())
        key = self._aliases.get(name, name)
        if key in self._items:
            return self._items[key]
        candidates = list(self._items) + list(self._aliases)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f" Did you mean {self._aliases.get(close[0], close[0])!r}?" if close else ""
        available = ", ".join(self.names())
        msg = f"Unknown {self.kind} {name!r}.{hint} Available {self.kind}s: {available}."
        raise UnknownNameError(msg, kind=self.kind, name=name, available=self.names())

    def names(self) -> tuple[str, ...]:
        """Canonical names, sorted."""
        return tuple(sorted(self._items))

    def aliases(self, name: str) -> tuple[str, ...]:
        """Aliases of the canonical ``name``."""
        return tuple(sorted(a for a, n in self._aliases.items() if n == name))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Temporary registrations (tests): everything registered inside is undone on exit."""
        items, aliases = dict(self._items), dict(self._aliases)
        try:
            yield self
        finally:
            self._items, self._aliases = items, aliases


if TYPE_CHECKING:
    _MethodRegistryBase = Registry[type[Method]]
else:  # Method is not importable here at run time (it imports this module)
    _MethodRegistryBase = Registry


class MethodRegistry(_MethodRegistryBase):
    """The method registry: a Registry that also answers which methods fit a model.

    Compatibility lives here, beside the names, so that ``Method`` (whose error messages list
    the methods that would work) never calls up into the ``xai.explain`` facade.
    """

    def compatible(self, adapter: ModelAdapter) -> list[str]:
        """Canonical names of the registered methods that can explain models behind ``adapter``."""
        return [name for name in self.names() if self.get(name).supports(adapter)]


METHODS: MethodRegistry = MethodRegistry("method")
register_method = METHODS.register
