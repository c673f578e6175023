"""Fixtures of the edge runtime tests: a tiny real ONNX model and free local endpoints."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def scnet_t_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init scnet-t exported to ONNX with dynamic batch and size (the runtime's real path)."""
    torch = pytest.importorskip("torch", reason="exporting the test model needs torch")
    pytest.importorskip("onnxruntime")
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.export.onnx import export_onnx
    from crackseg.train.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "scnet-t.onnx"
    return export_onnx(create_model("scnet-t"), ModelSpec(arch="scnet-t"), path, input_size=(64, 64), dynamic=True)


def _free_port() -> int:
    """A TCP port nothing listens on right now (for commands that must be told where to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def endpoint() -> str:
    return f"tcp://127.0.0.1:{_free_port()}"


def _crackseg_command(*args: str) -> list[str]:
    code = (
        'import sys\nsys.modules["torch"] = None\nfrom crackseg.edge.cli.main import main\nsys.exit(main(sys.argv[1:]))'
    )
    return [sys.executable, "-c", code, *args]


@pytest.fixture
def crackseg_command() -> Callable[..., list[str]]:
    """Builds a ``crackseg ARGS`` subprocess command on a machine "without torch", like a Jetson runtime image.

    Blocking torch also keeps the CLI from importing the training stack for the commands it lists.
    """
    return _crackseg_command


GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def golden() -> ModuleType:
    """``tests/golden/make_golden.py``, the generator of the golden wire messages, imported as a module."""
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module
