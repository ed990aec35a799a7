"""The canonical expression classes, and the mappings that bring every source onto them."""

from __future__ import annotations

from .errors import DataError

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
