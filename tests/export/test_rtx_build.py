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
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.export.engine import EngineFromOnnx
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


@pytest.mark.parametrize("name", ["scnet-t", "scnet"])
def test_fp32_and_fp16_models_build(name: str, tmp_path: Path) -> None:
    fp32 = _export(name, tmp_path, 64)
    _build(fp32, "fp32")
    model, _ = read_onnx(fp32)
    fp16 = tmp_path / f"{name}.fp16.onnx"
    onnx.save(convert_to_fp16(model), str(fp16))
    _build(fp16, "fp16")


@pytest.mark.parametrize("name", ["scnet-t", "scnet"])
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
    command = ["export", "engine", "--onnx", str(onnx_path), "--precision", "fp32", "--rtx-target", *TARGET]
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
