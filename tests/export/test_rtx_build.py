"""Every exported precision of SCNet parses and builds with TensorRT for RTX (ahead of time, no GPU needed).

TensorRT itself cannot be installed here; PyPI's TensorRT for RTX can, and its builder compiles an
engine for a named GPU generation without a GPU present. That proves what the deployment path needs
from the exporter: TensorRT's ONNX parser accepts the graph and the builder finds implementations
for every layer. Running the engines needs an RTX GPU and is not tested here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest

from crackseg.calib.qdq import quantize_qdq
from crackseg.edge.artifact.spec import MASK_NAME, OUTPUT_NAME, THRESHOLD_NAME, ModelSpec
from crackseg.edge.backends.trt import trt
from crackseg.export.engine import EngineBuildError, EngineFromOnnx, add_device_mask
from crackseg.export.onnx import convert_to_fp16, export_onnx, read_onnx
from crackseg.train.models import create_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt_rtx_bindings") is None,
    reason="TensorRT for RTX is not installed (pip install 'crackseg[rtx]')",
)

TARGET = ("SM89",)  # an Ada generation RTX GPU


def _export(name: str, folder: Path, size: int) -> Path:
    return export_onnx(create_model(name), ModelSpec(arch=name), folder / f"{name}.onnx", (size, size), dynamic=True)


def _build(path: Path, precision: str, workspace_mib: int = 4096) -> bytes:
    loader = EngineFromOnnx(path, precision=precision, workspace_mib=workspace_mib, progress=False, rtx_targets=TARGET)  # type: ignore[arg-type]
    engine = loader()
    assert len(engine) > 0
    return engine


@pytest.mark.parametrize("name", ["scnet-t", "scnet", "scnet-e0", "fpn-e0"])
def test_fp32_and_fp16_models_build(name: str, tmp_path: Path) -> None:
    fp32 = _export(name, tmp_path, 64)
    _build(fp32, "fp32")
    model, _ = read_onnx(fp32)
    fp16 = tmp_path / f"{name}.fp16.onnx"
    onnx.save(convert_to_fp16(model), str(fp16))
    _build(fp16, "fp16")


def test_the_engine_makes_the_mask_on_the_gpu_from_the_float32_map(tmp_path: Path) -> None:
    path = _export("scnet-t", tmp_path, 64)
    model, _ = read_onnx(path)
    onnx.save(convert_to_fp16(model), str(path))  # FP16 inside, float32 prob out: compared as the host compares
    logger = trt.Logger(trt.Logger.WARNING)
    network = trt.Builder(logger).create_network(0)
    assert trt.OnnxParser(network, logger).parse_from_file(str(path))
    add_device_mask(network)
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    outputs = {network.get_output(i).name: network.get_output(i) for i in range(network.num_outputs)}
    assert list(outputs) == [OUTPUT_NAME, MASK_NAME]
    assert outputs[MASK_NAME].dtype == trt.DataType.BOOL
    assert inputs[THRESHOLD_NAME].dtype == trt.DataType.FLOAT and tuple(inputs[THRESHOLD_NAME].shape) == (1, 1, 1, 1)
    comparison = network.get_layer(network.num_layers - 1)  # the float32 map against the threshold
    assert comparison.type == trt.LayerType.ELEMENTWISE
    assert [comparison.get_input(i).name for i in range(2)] == [OUTPUT_NAME, THRESHOLD_NAME]
    assert outputs[OUTPUT_NAME].dtype == trt.DataType.FLOAT


@pytest.mark.parametrize("name", ["scnet-t", "scnet", "scnet-e0", "fpn-e0"])
def test_int8_qdq_model_builds(name: str, tmp_path: Path) -> None:
    fp32 = _export(name, tmp_path, 64)
    model, spec = read_onnx(fp32)
    rng = np.random.default_rng(0)
    feeds = [{"image": rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)} for _ in range(4)]
    int8 = tmp_path / f"{name}.int8.onnx"
    onnx.save(quantize_qdq(model, spec, feeds, progress=False), str(int8))
    _build(int8, "int8")


def test_the_cli_builds_for_a_named_architecture_without_a_gpu_and_records_it(tmp_path: Path) -> None:
    from crackseg.edge.artifact.manifest import NO_GPU, read_manifest
    from crackseg.edge.cli.main import main

    onnx_path = _export("scnet-t", tmp_path, 64)
    lower_case = [name.lower() for name in TARGET]  # sm89 as well as SM89
    command = ["export", "engine", "--onnx", str(onnx_path), "--precision", "fp32", "--rtx-target", *lower_case]
    assert main(command) == 0
    (engine,) = tmp_path.glob("scnet-t.fp32.rtx*.sm89.engine")
    manifest = read_manifest(engine)
    assert manifest.builder.rtx_targets == TARGET
    assert manifest.runtime.tensorrt_module.startswith("tensorrt_rtx")
    if manifest.runtime.gpu_name == NO_GPU:  # this machine has no usable GPU, which does not matter here
        assert manifest.runtime.compute_capability == (0, 0)
    stamp = engine.stat().st_mtime
    assert main(command) == 0  # up to date: the build machine's GPU is not what the engine is checked against
    assert engine.stat().st_mtime == stamp


def test_a_build_over_the_workspace_cap_names_the_cap_and_the_shape_to_change(tmp_path: Path) -> None:
    path = _export("scnet-t", tmp_path, 64)
    expected = r"within a 1 MiB workspace for inputs up to 1x3x1024x1024.*raise the workspace"
    with pytest.raises(EngineBuildError, match=expected):
        _build(path, "fp32", workspace_mib=1)
