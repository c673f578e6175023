"""A model whose tensors disagree with its spec or with the geometry in use is refused when it loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.artifact.spec import SPEC_KEY, ModelSpec
from crackseg.edge.backends import BackendError, open_runner
from crackseg.edge.cli.main import main
from crackseg.edge.runtime.geometry import NativeGeometry, ResizeGeometry, TileGeometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.pipeline import Pipeline
from crackseg.edge.runtime.postprocess import Postprocessor
from crackseg.edge.runtime.sources import open_source

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SPEC = ModelSpec(arch="scnet-t", threshold=0.59)


def _model(path: Path, channels_in: int, channels_out: int, size: int | None = None, dtype: int | None = None) -> Path:
    """A tiny ONNX model with the crackseg spec: ``prob = sigmoid(image)``, averaged to ``channels_out`` if 1."""
    from onnx import TensorProto, helper

    elem = dtype or TensorProto.FLOAT
    height, width = (size, size) if size else ("H", "W")
    image = helper.make_tensor_value_info("image", elem, ["N", channels_in, height, width])
    prob = helper.make_tensor_value_info("prob", elem, ["N", channels_out, height, width])
    nodes = [helper.make_node("Sigmoid", ["image"], ["prob"] if channels_out == channels_in else ["s"])]
    if channels_out != channels_in:
        nodes.append(helper.make_node("ReduceMean", ["s"], ["prob"], axes=[1], keepdims=1))
    graph = helper.make_graph(nodes, "probe", [image], [prob])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {SPEC_KEY: SPEC.to_json()})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("channels_in", "channels_out", "dtype", "message"),
    [
        (1, 1, None, "input 'image' has 1 channel(s) (Nx1xHxW), but its spec says 3 (RGB)"),
        (3, 3, None, "output 'prob' is Nx3xHxW, but its spec says Nx1xHxW"),
        (3, 1, "DOUBLE", "input 'image' is double, but the spec's normalized input is float32 or float16"),
    ],
)
def test_a_model_that_disagrees_with_its_spec_is_refused_at_load(
    tmp_path: Path, channels_in: int, channels_out: int, dtype: str | None, message: str
) -> None:
    elem = getattr(onnx.TensorProto, dtype) if dtype else None
    path = _model(tmp_path / "m.onnx", channels_in, channels_out, dtype=elem)
    with pytest.raises(BackendError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_runner(path).activate()


def test_a_matching_model_loads_and_runs(tmp_path: Path) -> None:
    with open_runner(_model(tmp_path / "m.onnx", 3, 1)) as runner:
        assert runner.signature is not None and runner.signature.input_shape == (None, 3, None, None)
        prob = runner.infer(np.zeros((1, 3, 32, 32), np.float32))
    assert prob.shape == (1, 1, 32, 32) and np.allclose(prob, 0.5)


def _pipeline(runner_path: Path, geometry_size: tuple[int, int] | None, tile: bool = False) -> None:
    with open_runner(runner_path) as runner:
        if geometry_size is None:
            geometry = NativeGeometry(SPEC)
        elif tile:
            geometry = TileGeometry(SPEC, geometry_size, overlap=8)
        else:
            geometry = ResizeGeometry(SPEC, geometry_size)
        Pipeline(open_source("synthetic://"), runner, geometry, Postprocessor(0.5), MessageBuilder(bytes(16)), [])


def test_a_fixed_size_model_is_refused_unless_the_geometry_feeds_that_size(tmp_path: Path) -> None:
    path = _model(tmp_path / "fixed.onnx", 3, 1, size=64)
    with pytest.raises(BackendError, match=r"input is fixed at 64x64 \(WxH\), but it would be fed frames at native"):
        _pipeline(path, None)
    with pytest.raises(BackendError, match="fed 128x64; pass --size 64x64 or --tile 64x64"):
        _pipeline(path, (64, 128))
    _pipeline(path, (64, 64))
    _pipeline(path, (64, 64), tile=True)


def test_crackseg_run_refuses_a_one_channel_model_in_one_line(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _model(tmp_path / "gray.onnx", 1, 1)
    assert main(["run", "--model", str(path), "--frames", "1", "--bind", endpoint]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("crackseg run: error:") and "\n" not in err and "Traceback" not in err
    assert "gray.onnx: input 'image' has 1 channel(s)" in err and "spec says 3 (RGB)" in err
