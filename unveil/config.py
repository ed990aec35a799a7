"""The one config path: a YAML file per experiment -> typed, nested dataclasses, with `key.sub=value`
overrides from the command line.

Every value is checked against its field's type and the key is named when it is wrong: unknown keys,
`epochs: 2.5`, `epochs: true`, `lr: .nan` and `batch_size: ten` are errors. Numbers written as strings
(`lr: "2e-3"`) are read as numbers. A partial section only changes the keys it names: the rest keep the
stage's own defaults. The resolved config is saved beside every run's outputs, so a checkpoint can
always be traced back to what made it.

    cfg = load_config(ClassifierConfig, "configs/classifier_synthetic.yaml", ["train.epochs=3"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UnveilError
from .shipped import resolve_config

T = TypeVar("T")
INT_LIMIT = 2 ** 63


class _StrictLoader(yaml.SafeLoader):
    """YAML as a config needs it: a key given twice is an error (not the last one silently winning), and
    aliases (`*name`) are refused: a config is a plain tree, and aliases of aliases make a small file
    expand to billions of values."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} refused (write the value out)",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str):
    """YAML text as data (`yaml.safe_load`, with `_StrictLoader`'s rules); raises yaml.YAMLError."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(" line N", what is wrong) for a one-line message; PyYAML's own spans several lines."""
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(filter(None, (getattr(exc, "context", None), getattr(exc, "problem", None))))
    return (f" line {mark.line + 1}" if mark else ""), what or str(exc).splitlines()[0]


def load_yaml(path: str | Path) -> dict:
    path = resolve_config(path)  # `configs/x.yaml` also works from an installed package
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where, what = _yaml_problem(exc)
        raise UnveilError(f"{path}{where}: invalid YAML ({what})") from None
    except UnicodeDecodeError as exc:
        raise UnveilError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UnveilError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    if data is None:
        raise UnveilError(f"{path}: the config is empty (an experiment must say what it trains)")
    if not isinstance(data, dict):
        raise UnveilError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b=value` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides or []:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UnveilError(f"bad override {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise UnveilError(f"bad override {item!r}: the value is not valid YAML ({_yaml_problem(exc)[1]})") from None
        node = data
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UnveilError(f"bad override {item!r}: {'.'.join(parts[:depth + 1])} is a value, not a section")
        node[parts[-1]] = value
    return data


def from_dict(cls: type[T], data: dict | None, where: str = "config", base: T | None = None,
              section: str = "") -> T:
    """Build dataclass `cls` from a mapping, checking every value against its field's type.

    Keys not given keep their value in `base` (default: the fields' own defaults), recursively: so a
    section names only what it changes, and a stage's shared sections keep that stage's defaults. Raises
    UnveilError naming `where` (the file), the key and the problem.
    """
    at = f"{where}: {section}" if section else f"{where}:"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UnveilError(f"{at} expected a mapping of keys, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        keys = ", ".join(f"{section}.{k}" if section else str(k) for k in unknown)
        raise UnveilError(f"{where}: unknown key(s) {keys}; valid{' in ' + section if section else ''}: "
                          f"{', '.join(names)}")
    values = {}
    for name, value in data.items():
        key = f"{section}.{name}" if section else name
        nested = _dataclass_in(hints[name])
        if nested is not None and (isinstance(value, dict) or value is None):
            current = getattr(base, name) if base is not None else _field_default(cls, name)
            values[name] = from_dict(nested, value, where, current if isinstance(current, nested) else None, key)
        else:
            values[name] = _typed(value, hints[name], f"{where}: {key}")
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"{where}: {_keyed(section, str(exc))}") from None


def _keyed(section: str, message: str) -> str:
    """A section's error with its full key once: `train.augment` + "augment.scale must ..." reads
    "train.augment.scale must ...", and a message that names no key gets "section: " in front."""
    head, last = message.split(" ")[0], section.rsplit(".", 1)[-1]
    if not section or head.startswith(section):
        return message
    if head.startswith(last):
        return section[: -len(last)] + message
    return f"{section}: {message}"


def _field_default(cls: type, name: str) -> Any:
    """The default a dataclass field would get (a stage's own defaults for a shared section)."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


def _typed(value: Any, hint: Any, key: str) -> Any:
    """`value` as type `hint`, or an UnveilError naming `key`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _typed(value, option, key)
            except UnveilError as exc:
                errors.append(str(exc))
        raise UnveilError(errors[0] if len(errors) == 1 else f"{key}: expected {_name(hint)}, got {_shown(value)}")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):  # a section inside a list (data.mix)
        where, _, section = key.rpartition(": ")
        return from_dict(hint, value, where, None, section)
    if dataclasses.is_dataclass(hint):  # a section given a plain value, e.g. --set train=3
        raise UnveilError(f"{key}: expected a section (a mapping of keys), got {_shown(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UnveilError(f"{key}: expected true or false, got {_shown(value)}")
    if hint is int:
        number = _number(value, key, "an integer")
        if isinstance(number, float) and not number.is_integer():
            raise UnveilError(f"{key}: expected an integer, got {_shown(value)}")
        if not -INT_LIMIT <= number < INT_LIMIT:  # what torch (and every count or index) can hold
            raise UnveilError(f"{key}: {_shown(value)} is too large (integers fit in 64 bits)")
        return int(number)
    if hint is float:
        return float(_number(value, key, "a number"))
    if hint is str:
        if isinstance(value, str):
            return value
        raise UnveilError(f"{key}: expected text, got {_shown(value)}")
    if origin is tuple or origin is list:
        if not isinstance(value, (list, tuple)):
            raise UnveilError(f"{key}: expected a list, got {_shown(value)}")
        items = args if origin is tuple and args and args[-1] is not Ellipsis else (args[:1] or (Any,)) * len(value)
        if len(items) != len(value):
            raise UnveilError(f"{key}: expected {len(items)} values, got {len(value)} ({_shown(value)})")
        typed = [_typed(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, items))]
        return tuple(typed) if origin is tuple else typed
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
        raise UnveilError(f"{key}: expected a mapping of keys, got {_shown(value)}")
    return value


def _number(value: Any, key: str, what: str) -> int | float:
    if isinstance(value, bool):
        raise UnveilError(f"{key}: expected {what}, got {_shown(value)}")
    if isinstance(value, str):  # YAML reads 2e-3 (no dot) as text
        try:
            value = float(value) if any(c in value.lower() for c in ".en") else int(value)
        except ValueError:
            raise UnveilError(f"{key}: expected {what}, got {_shown(value)}") from None
    if not isinstance(value, (int, float)):
        raise UnveilError(f"{key}: expected {what}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnveilError(f"{key}: expected a finite number, got {value}")
    return value


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
    return None


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, list, dict, bool)) or value is None else repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def check_args(key: str, registry, name: str, args: dict) -> None:
    """For a config's `__post_init__`: a ValueError naming `key` unless the registered `name` can be
    built with `args` (unknown keys, wrong types and bad values are caught here, not mid-run)."""
    if args:
        try:
            registry.check(name, args)
        except UnveilError as exc:
            raise ValueError(f"{key}: {exc}") from None


SEED_LIMIT = 2 ** 32   # seeds are 0 .. 2**32 - 1: what torch, numpy and scikit-learn all take


def check_seed(value: Any, key: str) -> int:
    """`value` if it is a seed every library Unveil seeds accepts, else an UnveilError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise UnveilError(f"{key}: a seed is a whole number from 0 to {SEED_LIMIT - 1}, got {_shown(value)}")
    return value


def check_choice(key: str, value: Any, choices) -> None:
    """For a config's `__post_init__`: a ValueError naming `key` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")


def to_dict(obj: Any) -> dict:
    """A config as plain YAML/JSON-able data (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read `path`, apply overrides, and build `cls` — the one way every command gets its config."""
    return from_dict(cls, apply_overrides(load_yaml(path), overrides), where=str(path))
