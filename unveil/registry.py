"""Models registered by name and built from keyword arguments (after timm's `create_model`)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import UnveilError

T = TypeVar("T")


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

    def create(self, name: str, **kwargs) -> T:
        """Build `name`; arguments it does not take or cannot use (from a config or a sidecar) are an
        UnveilError that names them."""
        if not isinstance(name, str) or name not in self._builders:
            raise UnveilError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        try:
            return self._builders[name](**kwargs)
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
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders
