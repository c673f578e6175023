"""The layers: a shared core at the bottom, two sibling branches on it, apps on top (README "Layout").

Every module must sit in a named layer (a new file outside :data:`LAYERS` fails) and may import only
the layers its own layer lists as below it. The two branches, build (train -> export -> calib) and
runtime, never import each other, in either direction.

Imports are read with the AST, including imports inside functions and ``TYPE_CHECKING`` blocks, the
string arguments of ``importlib.import_module``, ``pkgutil.resolve_name`` and ``__import__``, any string
that is a whole ``crackseg.<module>[:name]`` reference (command and scheme tables) and attribute
access through the package (``import crackseg`` then ``crackseg.train.loop.fit``), so neither a lazy
import nor a string can hide a dependency.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from crackseg.edge.artifact.loaders import network_loaders

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("edge", "train", "export", "calib")


@dataclass(frozen=True)
class Layer:
    """A named layer: the packages it holds (each with its submodules), exact modules, and the layers it may import."""

    name: str
    packages: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()


CORE = ("artifact contract", "runners", "evaluation core")

LAYERS: tuple[Layer, ...] = (
    Layer("artifact contract", ("crackseg.edge.artifact",), ("crackseg.edge",)),
    Layer(
        "runners",
        ("crackseg.edge.backends", "crackseg.edge.models"),
        imports=("artifact contract",),
    ),
    Layer("evaluation core", ("crackseg.edge.evaluation",), imports=("artifact contract", "runners")),
    Layer("build: train", ("crackseg.train",), imports=CORE),
    Layer("build: export", ("crackseg.export",), imports=(*CORE, "build: train")),
    Layer("build: calib", ("crackseg.calib",), imports=(*CORE, "build: train", "build: export")),
    Layer(
        "runtime",
        ("crackseg.edge.runtime",),
        imports=CORE,
    ),
    Layer(
        "apps",
        (
            "crackseg.edge.cli",
            "crackseg.edge.bench",
            "crackseg.edge.report",
            "crackseg.train.commands",
            "crackseg.export.command",
            "crackseg.calib.command",
        ),
        imports=(*CORE, "build: train", "build: export", "build: calib", "runtime"),
    ),
)
"""Bottom first; a module belongs to the layer of its longest matching package (or its exact module)."""

_BY_NAME = {layer.name: layer for layer in LAYERS}
_STRING_IMPORTERS = frozenset({"import_module", "resolve_name", "__import__"})
_REFERENCE = re.compile(rf"crackseg\.({'|'.join(STAGES)})(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?")


def layer_of(module: str) -> Layer:
    """The layer of a crackseg module (``crackseg.edge.cli.run`` -> apps); a module in no layer raises."""
    matches = [(len(name), layer) for layer in LAYERS for name in layer.modules if module == name]
    matches += [
        (len(prefix), layer)
        for layer in LAYERS
        for prefix in layer.packages
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise ValueError(f"{module} is in no layer: add its package to LAYERS in tests/test_layers.py")
    return max(matches, key=lambda match: match[0])[1]


def _dotted(node: ast.expr) -> str | None:
    """``crackseg.train.loop.fit`` for an attribute chain rooted at the name ``crackseg``, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "crackseg" and parts:
        return ".".join(["crackseg", *reversed(parts)])
    return None


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def imported_modules(tree: ast.AST, package: str, references: bool = True) -> list[tuple[int, str]]:
    """``(line, module)`` of every crackseg import in ``tree``; ``package`` resolves relative imports.

    With ``references``, a string that is a whole ``crackseg.<module>[:name]`` counts too: a table entry
    that code imports later, or a ``python -m`` target.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from package import module` imports the submodule: judge by it where it is one
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and _called_name(node) in _STRING_IMPORTERS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value.split(":", 1)[0]))
        elif (
            references
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _REFERENCE.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value.split(":", 1)[0]))  # a table entry such as "module:Class"
        elif isinstance(node, ast.Attribute) and not isinstance(getattr(node, "_parent", None), ast.Attribute):
            dotted = _dotted(node)
            if dotted is not None:
                found.append((node.lineno, dotted))
    return [(line, name) for line, name in found if name.startswith("crackseg.")]


def _mark_parents(tree: ast.AST) -> ast.AST:
    """Lets the scan read only the longest attribute chain (``crackseg.a.b``, not also ``crackseg.a``)."""
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child._parent = node  # type: ignore[attr-defined]
    return tree


def _modules() -> list[tuple[str, Path]]:
    """``(module name, file)`` of every module of the four stage folders."""
    modules = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append((".".join(("crackseg", *parts)), path))
    return modules


def _exists(module: str) -> bool:
    """A crackseg module (file or package) of that name is in the source tree."""
    path = ROOT.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_named(target: str) -> str | None:
    """The longest prefix of ``target`` that is a crackseg module (``crackseg.train.loop.fit`` -> ``...loop``)."""
    parts = target.split(".")
    for end in range(len(parts), 1, -1):
        if _exists(".".join(parts[:end])):
            return ".".join(parts[:end])
    return None


def forbidden_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that reach a layer its own layer may not import, as descriptions."""
    package = module if is_package else module.rsplit(".", 1)[0]
    own = layer_of(module)
    allowed = {own.name, *own.imports}
    found = []
    for line, target in imported_modules(_mark_parents(ast.parse(source)), package):
        theirs = layer_of(target)
        if theirs.name not in allowed:
            found.append(f"line {line}: {target} ({theirs.name})")
    return found


def package_of(module: str, is_package: bool) -> str:
    """The package (folder) a module lives in: itself for a package's ``__init__``."""
    return module if is_package else module.rsplit(".", 1)[0]


def package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted; empty when acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def _package_graph() -> dict[str, set[str]]:
    """Package -> the packages its modules import (a package's own ``__init__`` counts as inside it)."""
    edges: dict[str, set[str]] = {}
    for module, path in _modules():
        is_package = path.name == "__init__.py"
        own = package_of(module, is_package)
        tree = _mark_parents(ast.parse(path.read_text(encoding="utf-8")))
        # a command table or a ``python -m`` target names a module without importing it: no edge
        for _, target in imported_modules(tree, package_of(module, is_package), references=False):
            named = _module_named(target)
            if named is None:
                continue
            is_init = (ROOT.joinpath(*named.split(".")[1:]) / "__init__.py").is_file()
            if is_init and own.startswith(named + "."):
                continue  # a subpackage reading its parent's __init__ (``crackseg.edge``'s docstring) is no cycle
            other = package_of(named, is_init)
            if other != own:
                edges.setdefault(own, set()).add(other)
    return edges


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_every_crackseg_import_names_a_module_that_exists(module: str, path: Path) -> None:
    """Catches imports of a moved module's old path (``from package import name`` may name an attribute)."""
    tree = _mark_parents(ast.parse(path.read_text(encoding="utf-8")))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    missing = [f"line {line}: {target}" for line, target in imported_modules(tree, package)
               if _module_named(target) is None]  # fmt: skip
    assert not missing, f"{module} imports modules that do not exist: {'; '.join(missing)}"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_every_module_imports_only_the_layers_below_it(module: str, path: Path) -> None:
    forbidden = forbidden_imports(module, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
    assert not forbidden, f"{module} ({layer_of(module).name}) imports outside its layer: {'; '.join(forbidden)}"


def test_no_import_cycle_between_packages() -> None:
    assert package_cycles(_package_graph()) == []


@pytest.mark.parametrize(
    ("module", "source", "allowed"),
    [
        # the self-checks of the first layer test
        ("crackseg.edge.backends.pytorch", "from crackseg.train.checkpoint import load_checkpoint", False),
        ("crackseg.edge.artifact.spec", "def f():\n    import crackseg.edge.runtime.pipeline", False),
        ("crackseg.export.onnx", "from crackseg.edge.runtime.sources.synthetic import CrackSynth", False),
        ("crackseg.train.loop", "from crackseg.export import onnx", False),
        ("crackseg.calib.qdq", "from crackseg.export.onnx import embed_spec", True),
        ("crackseg.edge.cli.run", "from crackseg.calib import command", True),
        ("crackseg.edge.evaluation.metrics", "from . import dataset", True),
        # the six violations the first test let through (issue 29)
        ("crackseg.edge.runtime.pipeline", "def f():\n    from crackseg.train.loop import fit", False),
        ("crackseg.edge.runtime.sinks.publish_zmq", "from crackseg.calib.qdq import quantize_qdq", False),
        ("crackseg.edge.runtime.pipeline", "import importlib\nimportlib.import_module('crackseg.train.loop')", False),
        (
            "crackseg.edge.runtime.sinks.record",
            "import pkgutil\npkgutil.resolve_name('crackseg.export.onnx:export_onnx')",
            False,
        ),
        ("crackseg.edge.runtime.wire", "__import__('crackseg.calib.qdq')", False),
        ("crackseg.edge.runtime.pipeline", "import crackseg\ndef f():\n    return crackseg.train.loop.fit", False),
        # build never imports the runtime either, and a table of "module:function" strings counts
        ("crackseg.train.loop", "from crackseg.edge.runtime.pipeline import Pipeline", False),
        ("crackseg.edge.artifact.loaders", "LOADERS = {'.pt': 'crackseg.train.checkpoint:load_checkpoint'}", False),
        ("crackseg.edge.bench.config", "def f():\n    from crackseg.train.models import create_model", True),
    ],
)
def test_the_scan_tells_allowed_imports_from_forbidden_ones(module: str, source: str, allowed: bool) -> None:
    assert (not forbidden_imports(module, source)) is allowed


def test_a_module_outside_the_map_is_in_no_layer() -> None:
    with pytest.raises(ValueError, match="in no layer"):
        layer_of("crackseg.edge.new_module")


def test_the_cycle_scan_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert package_cycles(edges) == [["a", "b", "c"]]


def test_registered_network_loaders_resolve() -> None:
    pytest.importorskip("torch")
    loaders = network_loaders()
    assert ".safetensors" in loaders
    for entry in loaders.values():
        assert callable(entry.load())
