"""The stages stack: every import points down the layer order, never up (README "Layout").

The import statements of every module are read with the AST, including imports inside functions and
``TYPE_CHECKING`` blocks, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

from crackseg.edge.artifact.loaders import NETWORK_LOADERS

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("edge", "train", "export", "calib")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("artifact contract", ("crackseg.edge.errors", "crackseg.edge.artifact")),
    ("runners", ("crackseg.edge.preprocess", "crackseg.edge.backends", "crackseg.edge.models")),
    ("evaluation core", ("crackseg.edge.evaluation",)),
    ("train", ("crackseg.train",)),
    ("export", ("crackseg.export",)),
    ("calib", ("crackseg.calib",)),
    # the replay runner is the runtime's measuring instrument: it replays maps per pipeline geometry
    ("runtime", ("crackseg.edge", "crackseg.edge.backends.replay")),
    (
        "cli / bench",
        (
            "crackseg.edge.cli",
            "crackseg.edge.bench",
            "crackseg.train.commands",
            "crackseg.export.command",
            "crackseg.calib.command",
        ),
    ),
)
"""Bottom first; a module belongs to the layer of its longest matching prefix."""


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of a crackseg module (``crackseg.edge.cli.run`` -> the cli / bench layer)."""
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise ValueError(f"{module} is in no layer")
    return max(matches)[1]


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every crackseg import in ``tree``; ``package`` resolves relative imports."""
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
    return [(line, name) for line, name in found if name.startswith("crackseg.")]


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


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that reach a higher layer, as ``line: target (layer)`` descriptions."""
    package = module if is_package else module.rsplit(".", 1)[0]
    own = layer_of(module)
    return [
        f"line {line}: {target} ({LAYERS[layer_of(target)][0]})"
        for line, target in imported_modules(ast.parse(source), package)
        if layer_of(target) > own
    ]


def _exists(module: str) -> bool:
    """A crackseg module (file or package) of that name is in the source tree."""
    path = ROOT.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_every_crackseg_import_names_a_module_that_exists(module: str, path: Path) -> None:
    """Catches imports of a moved module's old path (``from package import name`` may name an attribute)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    missing = [f"line {line}: {target}" for line, target in imported_modules(tree, package)
               if not (_exists(target) or _exists(target.rsplit(".", 1)[0]))]  # fmt: skip
    assert not missing, f"{module} imports modules that do not exist: {'; '.join(missing)}"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda value: str(value).rsplit("/", 1)[-1])
def test_no_module_imports_a_higher_layer(module: str, path: Path) -> None:
    upward = upward_imports(module, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports upward: {'; '.join(upward)}"


@pytest.mark.parametrize(
    ("module", "source", "upward"),
    [
        ("crackseg.edge.backends.pytorch", "from crackseg.train.checkpoint import load_checkpoint", True),
        ("crackseg.edge.artifact.spec", "def f():\n    import crackseg.edge.pipeline", True),
        ("crackseg.export.onnx", "from crackseg.edge.sources.synthetic import CrackSynth", True),
        ("crackseg.train.loop", "from crackseg.export import onnx", True),
        ("crackseg.calib.qdq", "from crackseg.export.onnx import embed_spec", False),
        ("crackseg.edge.cli.run", "from crackseg.calib import command", False),
        ("crackseg.edge.evaluation.metrics", "from . import dataset", False),
    ],
)
def test_the_scan_tells_upward_imports_from_downward_ones(module: str, source: str, upward: bool) -> None:
    assert bool(upward_imports(module, source)) is upward


def test_registered_network_loaders_resolve() -> None:
    pytest.importorskip("torch")
    for target in NETWORK_LOADERS.values():
        assert callable(pkgutil.resolve_name(target))
