"""The one config path: a YAML file per experiment -> nested dataclasses, with `key.sub=value` overrides.

Unknown keys are errors (a typo never silently falls back to a default), and the resolved config is
saved beside every run's outputs so a checkpoint can always be traced back to what made it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UnveilError
from .shipped import resolve_config

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict:
    path = resolve_config(path)  # `configs/x.yaml` also works from an installed package
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UnveilError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UnveilError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b=value` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UnveilError(f"bad override {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return data


def from_dict(cls: type[T], data: dict | None, where: str = "config") -> T:
    """Build dataclass `cls` from a dict, recursing into nested dataclasses; unknown keys raise."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UnveilError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        kind = _dataclass_in(hints[name])
        kwargs[name] = from_dict(kind, value, f"{where}.{name}") if kind and isinstance(value, dict) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"{where}: {exc}") from None


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
    return None


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read `path`, apply overrides, and build `cls` — the one way every command gets its config."""
    return from_dict(cls, apply_overrides(load_yaml(path), overrides), where=str(path))
