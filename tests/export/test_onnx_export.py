"""ONNX export: parity with PyTorch, the operator allow-list, FP16 conversion and the `crackseg export onnx` CLI."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from crackseg.edge.artifact.errors import ArtifactError
from crackseg.edge.artifact.spec import SPEC_KEY, ModelSpec, SpecError
from crackseg.edge.backends.base import Runner
from crackseg.edge.backends.onnxrt import OnnxRuntimeRunner
from crackseg.edge.backends.pytorch import TorchRunner
from crackseg.edge.cli import main as cli_main
from crackseg.edge.cli.registry import COMMANDS
from crackseg.export.command import synthetic_images
from crackseg.export.onnx import (
    ExportError,
    convert_to_fp16,
    export_onnx,
    onnx_precision,
    op_counts,
    read_onnx,
)
from crackseg.export.parity import compare_runners, fit_to
from crackseg.train.checkpoint import save_checkpoint
from crackseg.train.models import create_model

CPU = ("CPUExecutionProvider",)
SPEC = ModelSpec(arch="scnet-t")


@pytest.fixture(scope="module")
def scnet_t() -> nn.Module:
    torch.manual_seed(0)
    return create_model("scnet-t").eval()


@pytest.fixture(scope="module")
def dynamic_onnx(scnet_t: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(scnet_t, SPEC, tmp_path_factory.mktemp("onnx") / "scnet-t.onnx", (64, 64), dynamic=True)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """``crackseg`` with only the export command registered, so other stages' imports cannot interfere."""
    monkeypatch.setattr(cli_main, "COMMANDS", tuple(command for command in COMMANDS if command.name == "export"))
    return cli_main.main


@pytest.fixture(scope="module")
def checkpoint(scnet_t: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "scnet-t.safetensors", scnet_t, SPEC)


def _parity(model: nn.Module, onnx_path: Path, size: tuple[int, int]) -> float:
    with TorchRunner((model, SPEC), device="cpu") as reference, OnnxRuntimeRunner(onnx_path, CPU) as candidate:
        report = compare_runners(reference, candidate, synthetic_images(2, size), 1e-4, "synthetic")
    return report.max_abs_error


class _Constant(Runner):
    """A runner whose output is ``value`` everywhere."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(arch="scnet-t", threshold=0.5)

    def activate_impl(self) -> None: ...

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        return np.full((image.shape[0], 1, *image.shape[2:]), self.value, np.float32)

    def close_impl(self) -> None: ...


def test_parity_report_counts_errors_and_changed_decisions() -> None:
    images = [("a", np.zeros((32, 32, 3), np.uint8)), ("b", np.zeros((20, 30, 3), np.uint8))]
    with _Constant(0.25) as reference, _Constant(0.75) as candidate:
        report = compare_runners(reference, candidate, images, 0.5, "two images")
    # 32*32 + 20*30 = 1624 pixels, each 0.5 apart (exact in float32) and on opposite sides of the 0.5 threshold.
    assert (report.images, report.pixels, report.flipped) == (2, 1624, 1624)
    assert report.max_abs_error == 0.5 and report.mean_abs_error == 0.5
    assert report.passed  # the tolerance is inclusive
    assert "1624 of 1624 pixels change their decision at threshold 0.50" in str(report)


def test_nan_output_fails_parity() -> None:
    with _Constant(0.5) as reference, _Constant(float("nan")) as candidate:
        report = compare_runners(reference, candidate, [("a", np.zeros((32, 32, 3), np.uint8))], 1.0, "one image")
    assert not report.passed and report.max_abs_error == float("inf")


def test_static_export_matches_pytorch(scnet_t: nn.Module, tmp_path: Path) -> None:
    path = export_onnx(scnet_t, SPEC, tmp_path / "static.onnx", (64, 64))
    assert _parity(scnet_t, path, (64, 64)) <= 1e-4


def test_dynamic_export_matches_pytorch_at_another_size(scnet_t: nn.Module, dynamic_onnx: Path) -> None:
    assert _parity(scnet_t, dynamic_onnx, (96, 128)) <= 1e-4  # traced at 64x64


def test_export_embeds_the_spec_and_uses_only_allowed_operators(dynamic_onnx: Path) -> None:
    model, spec = read_onnx(dynamic_onnx)
    assert spec == SPEC
    assert {prop.key for prop in model.metadata_props} >= {SPEC_KEY}
    assert onnx_precision(model) == "fp32"
    assert "MaxUnpool" not in op_counts(model)


class _GeluHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(nn.functional.gelu(self.conv(image)))


def test_operator_outside_the_allow_list_fails_the_export(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"outside the TensorRT allow-list: \['Erf'\]"):
        export_onnx(_GeluHead(), SPEC, tmp_path / "gelu.onnx", (32, 32))


def test_size_must_be_a_multiple_of_the_spec(scnet_t: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a multiple of 32"):
        export_onnx(scnet_t, SPEC, tmp_path / "odd.onnx", (64, 70))


def test_read_onnx_refuses_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="ONNX file not found"):
        read_onnx(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 definitely not protobuf \xff\xfe")
    with pytest.raises(ArtifactError, match=r"corrupt\.onnx is not a readable ONNX file"):
        read_onnx(corrupt)
    foreign = tmp_path / "foreign.onnx"
    onnx.save(_tiny_graph(), str(foreign))
    with pytest.raises(SpecError, match=r"foreign\.onnx is not a crackseg model"):
        read_onnx(foreign)


def _tiny_graph() -> onnx.ModelProto:
    """A valid non-crackseg model: y = Relu(x)."""
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class _SmallNet(nn.Module):
    """Conv, instance norm, ReLU, 1x1 conv, bilinear upsampling, sigmoid: SCNet's operator kinds, shallow."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(8, affine=True)
        self.conv2 = nn.Conv2d(8, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.norm1(self.conv1(nn.functional.max_pool2d(image, 2))))
        logits = nn.functional.interpolate(self.conv2(features), scale_factor=2.0, mode="bilinear")
        return torch.sigmoid(logits)


def test_fp16_conversion_is_close_for_a_shallow_network(tmp_path: Path) -> None:
    path = export_onnx(_SmallNet(), SPEC, tmp_path / "small.onnx", (32, 32))
    converted = tmp_path / "small.fp16.onnx"
    onnx.save(convert_to_fp16(onnx.load(str(path))), str(converted))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    with OnnxRuntimeRunner(path, CPU) as fp32, OnnxRuntimeRunner(converted, CPU) as fp16:
        error = np.abs(fp16.infer(image) - fp32.infer(image)).max()
    assert 0 < error < 2e-3  # float16 rounding (11-bit mantissa): visible, but small


def test_fp16_graph_has_float16_weights_float32_io_and_float32_instance_norm(dynamic_onnx: Path) -> None:
    model = convert_to_fp16(onnx.load(str(dynamic_onnx)))
    assert onnx_precision(model) == "fp16"
    assert [value.type.tensor_type.elem_type for value in [*model.graph.input, *model.graph.output]] == [
        TensorProto.FLOAT,
        TensorProto.FLOAT,
    ]
    initializers = {init.name: init for init in model.graph.initializer}
    conv_weights = [initializers[node.input[1]] for node in model.graph.node if node.op_type == "Conv"]
    norm_scales = [initializers[node.input[1]] for node in model.graph.node if node.op_type == "InstanceNormalization"]
    assert {init.data_type for init in conv_weights} == {TensorProto.FLOAT16}
    assert {init.data_type for init in norm_scales} == {TensorProto.FLOAT}
    assert {prop.key: prop.value for prop in model.metadata_props}[SPEC_KEY] == SPEC.to_json()


def test_fp16_conversion_keeping_every_operator_in_fp32_changes_nothing(dynamic_onnx: Path) -> None:
    """The graph surgery alone (casts, weight copies, renamed outputs) must be exact."""
    original = onnx.load(str(dynamic_onnx))
    unchanged = convert_to_fp16(original, keep_fp32=frozenset(op_counts(original)))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)
    outputs = []
    for model in (original, unchanged):
        path = dynamic_onnx.with_name(f"{len(outputs)}.onnx")
        onnx.save(model, str(path))
        with OnnxRuntimeRunner(path, CPU) as runner:
            outputs.append(runner.infer(image))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_quantized_graph_is_not_converted_to_fp16(dynamic_onnx: Path) -> None:
    model = onnx.load(str(dynamic_onnx))
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "q_scale")
    model.graph.initializer.append(scale)
    first = model.graph.node[0]
    model.graph.node.insert(0, helper.make_node("QuantizeLinear", ["image", "q_scale"], ["image_q"]))
    model.graph.node.insert(1, helper.make_node("DequantizeLinear", ["image_q", "q_scale"], ["image_dq"]))
    first.input[0] = "image_dq"
    assert onnx_precision(model) == "int8"
    with pytest.raises(ExportError, match="only float32 graphs"):
        convert_to_fp16(model)


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [((40, 50, 3), None, (40, 50, 3)), ((40, 50, 3), (32, 32), (32, 32, 3)), ((20, 50, 3), (32, 64), (32, 64, 3))],
)
def test_fit_to_static_size(shape: tuple[int, int, int], size: tuple[int, int] | None, expected: tuple) -> None:
    image = np.arange(np.prod(shape), dtype=np.uint32).reshape(shape).astype(np.uint8)
    fitted = fit_to(image, size)
    assert fitted.shape == expected
    np.testing.assert_array_equal(fitted[:20, :32], image[:20, :32])  # top-left kept as is


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """One ``export onnx --dynamic --fp16`` run shared by the tests that read its results."""
    out = tmp_path_factory.mktemp("cli") / "model.onnx"
    # An untrained network amplifies FP16 rounding far past the trained-model tolerance: loosen only that one.
    args = ["export", "onnx", "--model", str(checkpoint), "--out", str(out), "--dynamic", "--size", "64x64",
            "--parity-images", "2", "--fp16", "--fp16-tolerance", "1"]  # fmt: skip
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(cli_main, "COMMANDS", tuple(command for command in COMMANDS if command.name == "export"))
        code = cli_main.main(args)
    return code, printed.getvalue(), out


def test_cli_exports_after_a_passing_parity_check(exported: tuple[int, str, Path]) -> None:
    code, printed, out = exported
    assert code == 0
    assert "parity on 2 synthetic crack images (64x64" in printed and "tolerance 1e-04: ok" in printed
    _, spec = read_onnx(out)
    assert spec == SPEC
    assert sorted(path.name for path in out.parent.iterdir()) == ["model.fp16.onnx", "model.onnx"]  # no .partial


def test_cli_writes_fp16_model_beside(exported: tuple[int, str, Path]) -> None:
    _, printed, out = exported
    model, spec = read_onnx(out.with_name("model.fp16.onnx"))
    assert onnx_precision(model) == "fp16" and spec == SPEC
    assert "float32 kept for InstanceNormalization" in printed


def test_cli_fails_and_writes_nothing_when_parity_fails(
    cli: Callable, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A static export this time; no two runtimes agree to 1e-12 on a network of 83 convolutions."""
    args = ["export", "onnx", "--model", str(checkpoint), "--out", str(tmp_path / "model.onnx"), "--size", "64x64",
            "--parity-images", "1", "--tolerance", "1e-12"]  # fmt: skip
    assert cli(args) == 1
    error = capsys.readouterr().err
    assert "model.onnx was not written" in error and "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


def test_cli_parity_on_real_images(
    cli: Callable, checkpoint: Path, tmp_path: Path, datasets_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Untrained weights amplify rounding at native resolution, so this checks the path, not the 1e-4 gate.
    args = ["export", "onnx", "--model", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--dynamic",
            "--size", "64x64", "--parity-data", str(datasets_root / "DeepCrack"), "--parity-split",
            "deepcrack_val", "--parity-images", "1", "--tolerance", "1"]  # fmt: skip
    assert cli(args) == 0
    assert "parity on 1 images of DeepCrack/deepcrack_val at native resolution" in capsys.readouterr().out


def test_cli_refuses_unknown_variant(cli: Callable, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = save_checkpoint(tmp_path / "nope.safetensors", create_model("scnet-t"), ModelSpec(arch="nope"))
    assert cli(["export", "onnx", "--model", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 1
    error = capsys.readouterr().err
    assert "unknown model variant 'nope'" in error and "Traceback" not in error


def test_cli_refuses_missing_checkpoint(cli: Callable, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["export", "onnx", "--model", str(tmp_path / "none.safetensors")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_engine_cli_names_a_bad_onnx_file(
    cli: Callable, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / f"{kind}.onnx"
    if kind == "corrupt":
        path.write_bytes(b"garbage")
    else:
        onnx.save(_tiny_graph(), str(path))
    assert cli(["export", "engine", "--onnx", str(path), "--precision", "fp16"]) == 1
    error = capsys.readouterr().err
    assert f"{kind}.onnx is not a" in error and "Traceback" not in error
