"""The layering docs/ARCHITECTURE.md describes, checked on the code: imports run one way (core <- stages
<- pipelines, and classify never imports inpaint), absolute and relative imports alike, and functions stay
short enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the import names it must never use
FORBIDDEN = {
    "unveil": ("unveil.classify", "unveil.inpaint", "unveil.pipelines"),
    "classify": ("unveil.inpaint", "unveil.pipelines"),
    "inpaint": ("unveil.pipelines",),
}
PACKAGE = ("unveil", "classify", "inpaint", "pipelines")
IMPORT_NAME = {"unveil": "unveil", "classify": "unveil.classify", "inpaint": "unveil.inpaint",
               "pipelines": "unveil.pipelines"}   # each folder's import name (setuptools' package-dir)


def package_of(path: Path) -> list[str]:
    """The package a source file's module sits in, as import-name parts: classify/models.py -> unveil.classify."""
    folder, *inner = path.relative_to(ROOT).parts
    return [*IMPORT_NAME[folder].split("."), *inner[:-1]]


def imported_names(tree: ast.AST, package: list[str]) -> set[str]:
    """Every module and name `tree` imports, relative imports resolved against `package`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def sources(folders) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def forbidden_imports(path: Path, text: str) -> list[str]:
    folder = path.relative_to(ROOT).parts[0]
    names = imported_names(ast.parse(text), package_of(path))
    return sorted(f"{path.relative_to(ROOT)} imports {name}" for name in names
                  if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder]))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_run_one_way(folder):
    bad = [line for path in sources([folder]) for line in forbidden_imports(path, path.read_text())]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("text", ["from ..inpaint import open_inpainter", "from .. import inpaint",
                                  "from ..pipelines.compare import Judge", "import unveil.inpaint",
                                  "from unveil.inpaint.stitch import stitch"])
def test_the_import_check_sees_every_form(text):
    """What the check above must catch, relative imports included, as if written in classify/models.py;
    and what it must let through."""
    here = ROOT / "classify" / "models.py"
    assert forbidden_imports(here, text)
    assert not forbidden_imports(here, "from .identity import classifier_record\nfrom ..checkpoint import x")
    assert forbidden_imports(ROOT / "unveil" / "data" / "store.py", "from ..classify import CLASSIFIERS")


def test_functions_are_short():
    long = []
    for path in sources(PACKAGE):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 >= 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "split these where their jobs split:\n" + "\n".join(long)
