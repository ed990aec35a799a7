"""Everything Unveil builds by name, in one kind of table (after timm's `create_model`): models, detectors,
occlusions and data sources. A layer above the core extends a table by registering into it, and is found
through the ``unveil.plugins`` entry point group (pyproject.toml), so the core never imports it: the photo
layer registers the ``photos:`` source and the ``photo-mask`` occlusion this way."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from .errors import UnveilError

T = TypeVar("T")
PLUGIN_GROUP = "unveil.plugins"


@functools.cache
def load_plugins() -> tuple[str, ...]:
    """Import every package registered under ``unveil.plugins`` (once): called when a table is asked for
    a name it does not hold, or for the full list of names."""
    names = []
    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()
        names.append(entry.name)
    return tuple(names)


class Registry(Generic[T]):
    """A name -> builder table; an unknown name raises an error that lists the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder
        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as `name`, or an UnveilError listing the names there are."""
        if name not in self:
            raise UnveilError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._builders[name]

    def create(self, name: str, **kwargs) -> T:
        """Build `name`; arguments it does not take or cannot use (from a config or a sidecar) are an
        UnveilError that names them."""
        builder = self.get(name)
        try:
            return builder(**kwargs)
        except (TypeError, ValueError, LookupError, ArithmeticError, RuntimeError) as exc:
            if isinstance(exc, UnveilError) or type(exc).__name__ == "OutOfMemoryError":
                raise
            raise UnveilError(f"{self.kind} {name!r} cannot be built with arguments {kwargs} ({exc})") from None

    def check(self, name: str, kwargs: dict) -> None:
        """Build `name` with `kwargs` on the meta device (no memory, no time) to catch bad arguments when
        a config is read instead of when training starts."""
        import torch

        with torch.device("meta"):
            self.create(name, **kwargs)

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        if isinstance(name, str) and name not in self._builders:
            load_plugins()
        return isinstance(name, str) and name in self._builders
