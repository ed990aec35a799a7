"""The canonical expression classes, and the mappings that bring every source onto them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import DataError, UnveilError

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASSES)

# FER2013 challenge CSV order: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
FER_CSV_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_CSV_TO_CANONICAL: tuple[int, ...] = tuple(CLASSES.index(name) for name in FER_CSV_ORDER)

# Names other data sets use for the same expressions (AffectNet, RAF-DB, CK+, KDEF, JAFFE folders).
DEFAULT_ALIASES: dict[str, str] = {
    "anger": "angry", "angry": "angry", "an": "angry", "ang": "angry",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust", "contempt": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear", "afs": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy", "hap": "happy",
    "neutral": "neutral", "ne": "neutral", "neu": "neutral",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise", "sur": "surprise",
}


def canonical_label(name: str, aliases: dict[str, str] | None = None, where: str = "") -> int:
    """Map a class name (any case, alias allowed) to its canonical index, or raise naming `where`."""
    key = name.strip().lower()
    table = {**DEFAULT_ALIASES, **{k.lower(): v.lower() for k, v in (aliases or {}).items()}}
    target = table.get(key, key)
    if target not in CLASSES:
        prefix = f"{where}: " if where else ""
        raise DataError(
            f"{prefix}unknown class name {name!r}; known classes: {', '.join(CLASSES)} "
            f"(map other names with an alias, e.g. --alias {key}=happy)"
        )
    return CLASSES.index(target)


def parse_aliases(pairs: list[str] | None) -> dict[str, str]:
    """Parse `name=class` strings from the command line into an alias map."""
    aliases = {}
    for pair in pairs or []:
        name, sep, target = pair.partition("=")
        if not sep or not name or target.lower() not in CLASSES:
            raise DataError(f"bad alias {pair!r}: expected NAME=CLASS with CLASS one of {', '.join(CLASSES)}")
        aliases[name.strip().lower()] = target.strip().lower()
    return aliases


# --------------------------------------------------------------------------- coarser class views

# The valence view of the masked-FER studies in the wild: seven classes are too fine for half a face.
VALENCE_GROUPS: dict[str, tuple[str, ...]] = {
    "negative": ("angry", "disgust", "fear", "sad"),
    "neutral": ("neutral",),
    "positive": ("happy", "surprise"),
}
NAMED_MAPS = {"valence": VALENCE_GROUPS}
CANONICAL_VIEW = ("none", "canonical")   # what names "no mapping" on the command line and in configs


@dataclass(frozen=True)
class ClassMap:
    """The canonical classes grouped into coarser ones: every canonical class in exactly one group.

    A number scored under a map is a G-class number (3 for valence), never comparable with a 7-class
    one: reports and sidecars carry `record()` wherever a map was used.

        valence = ClassMap.parse("valence")
        valence.labels(faces.labels)          # canonical labels -> group index
        valence.collapse(probs)               # [N, 7] probabilities -> [N, 3], summed per group
    """

    name: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, spec: Any, where: str = "class map") -> "ClassMap | None":
        """None for the canonical classes (None, "none", "canonical"); a named map ("valence"); inline
        text "GROUP=CLASS+CLASS,..." ; a mapping {group: [classes]} (YAML); or a `record()`."""
        if spec is None or spec in CANONICAL_VIEW:
            return None
        if isinstance(spec, str) and spec in NAMED_MAPS:
            return cls.build(spec, NAMED_MAPS[spec], where)
        if isinstance(spec, str):
            return cls.build("custom", _inline_groups(spec, where), where)
        if isinstance(spec, dict) and set(spec) == {"name", "groups"}:
            return cls.build(spec["name"], spec["groups"], where)
        if isinstance(spec, dict):
            return cls.build("custom", spec, where)
        raise UnveilError(f"{where}: expected {', '.join(NAMED_MAPS)}, GROUP=CLASS+CLASS,... or a mapping of "
                          f"groups to classes, got {spec!r}")

    @classmethod
    def build(cls, name: Any, groups: Any, where: str) -> "ClassMap":
        """Checked: at least two groups, each canonical class (or alias) in exactly one of them."""
        if not isinstance(name, str) or not name or not isinstance(groups, dict) or len(groups) < 2:
            raise UnveilError(f"{where}: a class map needs a name and at least two groups, got {groups!r}")
        seen: dict[str, str] = {}
        out = []
        for group, members in groups.items():
            members = [members] if isinstance(members, str) else members
            if not isinstance(group, str) or not group.strip() or not isinstance(members, (list, tuple)) or not members:
                raise UnveilError(f"{where}: group {group!r} must be a name with a list of classes, got {members!r}")
            canonical = []
            for member in members:
                label = CLASSES[canonical_label(str(member), where=f"{where}, group {group}")]
                if label in seen:
                    raise UnveilError(f"{where}: class {label!r} is in two groups ({seen[label]!r} and {group!r})")
                seen[label] = group
                canonical.append(label)
            out.append((group.strip(), tuple(canonical)))
        missing = [c for c in CLASSES if c not in seen]
        if missing:
            raise UnveilError(f"{where}: every class needs a group; none given for {', '.join(missing)}")
        if len({g for g, _ in out}) != len(out):
            raise UnveilError(f"{where}: two groups share a name")
        return cls(name, tuple(out))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(group for group, _ in self.groups)

    def group_of(self) -> torch.Tensor:
        """The group index of each canonical class. int64 [7]."""
        return torch.tensor([next(g for g, (_, members) in enumerate(self.groups) if c in members) for c in CLASSES])

    def labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Canonical labels -> group indices. Shape: [N] -> [N]."""
        return self.group_of().to(labels.device)[labels.long()]

    def collapse(self, probs: torch.Tensor) -> torch.Tensor:
        """Canonical probabilities summed over each group's classes. Shape: [N, 7] -> [N, G]."""
        if probs.shape[-1] != NUM_CLASSES:
            raise UnveilError(f"collapsing to the {self.name} view needs {NUM_CLASSES} canonical probabilities, "
                              f"got {probs.shape[-1]}")
        member = torch.nn.functional.one_hot(self.group_of(), len(self.groups)).to(probs)
        return probs @ member

    def record(self) -> dict:
        """What sidecars and reports keep: the name and the groups."""
        return {"name": self.name, "groups": {group: list(members) for group, members in self.groups}}

    def describe(self) -> str:
        groups = "; ".join(f"{group} = {'+'.join(members)}" for group, members in self.groups)
        return f"{self.name} ({groups})"


def _inline_groups(text: str, where: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        group, sep, members = part.partition("=")
        if not sep or not group.strip() or not members.strip():
            raise UnveilError(f"{where}: bad group {part!r}; expected GROUP=CLASS+CLASS, e.g. "
                              f"negative=angry+disgust+fear+sad (or a named map: {', '.join(NAMED_MAPS)})")
        if group.strip() in groups:
            raise UnveilError(f"{where}: group {group.strip()!r} is given twice")
        groups[group.strip()] = [m.strip() for m in members.split("+") if m.strip()]
    return groups


@dataclass(frozen=True)
class ClassView:
    """How one model's probabilities are scored: on the canonical classes (no map), on a map's groups
    as a model trained on them predicts them, or collapsed from a canonical model's probabilities."""

    mapping: ClassMap | None = None
    collapse: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return self.mapping.names if self.mapping else CLASSES

    def labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self.mapping.labels(labels) if self.mapping else labels

    def probs(self, probs: torch.Tensor) -> torch.Tensor:
        return self.mapping.collapse(probs) if self.collapse else probs

    def explained_class(self, probs: torch.Tensor) -> torch.Tensor:
        """The model's own output to explain (Grad-CAM) for each row of its raw probabilities: its top
        class, or where collapsed, its top canonical class inside the top group. [N, C] -> [N]."""
        if not self.collapse:
            return probs.argmax(1)
        inside = self.mapping.group_of().to(probs.device)[None, :] == self.probs(probs).argmax(1)[:, None]
        return probs.masked_fill(~inside, -1).argmax(1)

    def record(self) -> dict:
        """For reports: the class list, the map (None: canonical) and whether it was collapsed."""
        return {"classes": list(self.names), "class_map": self.mapping.record() if self.mapping else None,
                "collapsed_from_canonical": self.collapse}

    def describe(self) -> str:
        if self.mapping is None:
            return f"the {NUM_CLASSES} canonical classes"
        how = f"collapsed from {NUM_CLASSES}-class probabilities" if self.collapse else "as trained"
        return f"{len(self.names)}-class view {self.mapping.describe()}, {how}"


def class_view(meta: dict, requested: ClassMap | None, where: str = "the classifier") -> ClassView:
    """The view a model with sidecar `meta` is scored in when `requested` (None: its own classes) is asked.

    A canonical model can be scored in any map (its probabilities are collapsed); a model trained on a
    map only in that map: a 3-class number cannot be turned back into a 7-class one.
    """
    own = ClassMap.parse(meta.get("class_map"), f"{where}: class_map")
    if requested is None or (own is not None and own.groups == requested.groups):
        return ClassView(own, False)   # the same grouping under another name scores the same
    if own is None:
        return ClassView(requested, True)
    raise UnveilError(f"{where} was trained on the {len(own.names)}-class view {own.describe()}; it cannot be "
                      f"scored on {requested.describe()}")
