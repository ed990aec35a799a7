"""The layering docs/ARCHITECTURE.md describes, checked on the code: imports run one way (core <- photo <-
stages <- pipelines, and classify never imports inpaint), absolute and relative imports alike; no modules
import each other in a circle, imports inside functions counted; functions stay short enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the import names it must never use
FORBIDDEN = {
    "unveil": ("unveil.photo", "unveil.classify", "unveil.inpaint", "unveil.pipelines"),
    "photo": ("unveil.classify", "unveil.inpaint", "unveil.pipelines"),
    "classify": ("unveil.inpaint", "unveil.pipelines"),
    "inpaint": ("unveil.pipelines",),
}
PACKAGE = ("unveil", "photo", "classify", "inpaint", "pipelines")
IMPORT_NAME = {"unveil": "unveil", "photo": "unveil.photo", "classify": "unveil.classify",
               "inpaint": "unveil.inpaint", "pipelines": "unveil.pipelines"}   # setuptools' package-dir


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


def module_name(path: Path) -> str:
    return ".".join(package_of(path) + ([] if path.name == "__init__.py" else [path.stem]))


def imported_modules(tree: ast.AST, package: list[str], modules: set[str]) -> set[str]:
    """The modules of `modules` that `tree` imports, at any depth (inside functions too): `from pkg import
    name` is an import of the module pkg.name when there is one, else of pkg itself."""
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.update(owner(f"{module}.{alias.name}") for alias in node.names)
    return found - {None}


def import_circles(texts: dict[str, tuple[list[str], str]]) -> list[list[str]]:
    """Every set of modules that import each other in a circle (the strongly connected components of the
    import graph with more than one module), each as a sorted list. `texts`: module -> (package, source)."""
    graph = {name: imported_modules(ast.parse(text), package, set(texts)) - {name}
             for name, (package, text) in texts.items()}
    order, low, stack, circles = {}, {}, [], []

    def visit(name: str) -> None:   # Tarjan's algorithm
        order[name] = low[name] = len(order)
        stack.append(name)
        for other in sorted(graph[name]):
            if other not in order:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], order[other])
        if low[name] == order[name]:
            component = stack[stack.index(name):]
            del stack[stack.index(name):]
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in order:
            visit(name)
    return circles


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


def test_no_module_imports_itself_in_a_circle():
    texts = {module_name(path): (package_of(path), path.read_text()) for path in sources(PACKAGE)}
    circles = import_circles(texts)
    assert not circles, "modules importing each other (function-level imports counted):\n" + "\n".join(
        " <-> ".join(circle) for circle in circles)


def test_the_circle_check_sees_imports_inside_functions():
    """A circle closed by an import inside a function, three modules long, is found; the same modules
    importing one way are not a circle, nor is a module importing a name its own package re-exports."""
    core = ["unveil"]
    texts = {"unveil.a": (core, "from .b import g\n"),
             "unveil.b": (core, "import unveil.c\n"),
             "unveil.c": (core, "def f():\n    from unveil import a\n    return a\n"),
             "unveil.d": (core, "from unveil.a import x\n")}
    assert import_circles(texts) == [["unveil.a", "unveil.b", "unveil.c"]]
    texts["unveil.c"] = (core, "def f():\n    return 1\n")
    assert import_circles(texts) == []
    package = {"unveil.data": (["unveil", "data"], "from .sources import load\n"),
               "unveil.data.sources": (["unveil", "data"], "from . import synthetic\n"),
               "unveil.data.synthetic": (["unveil", "data"], "")}
    assert import_circles(package) == []


def test_the_photo_layer_extends_the_core_through_its_entry_point():
    """The core, imported alone, reads a photos: source name and the photo-mask occlusion: the registries
    find the photo layer through the unveil.plugins entry point, and nothing in the core imports it."""
    code = ("import sys\nfrom unveil.data.sources import SOURCES\nfrom unveil.occlusion import Occlusion\n"
            "assert 'unveil.photo' not in sys.modules\n"
            "assert type(Occlusion.parse('photo-mask')).__module__ == 'unveil.photo.source'\n"
            "assert 'photos' in SOURCES.names() and 'unveil.photo' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_functions_are_short():
    long = []
    for path in sources(PACKAGE):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 >= 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "split these where their jobs split:\n" + "\n".join(long)
