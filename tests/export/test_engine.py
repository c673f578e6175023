"""TensorRT engines: build planning, profiles, names, the runner's checks, and (with TensorRT and a GPU) real builds."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from crackseg.edge.artifact.hashing import sha256_bytes
from crackseg.edge.artifact.manifest import (
    BuilderOptions,
    EngineManifest,
    ManifestError,
    ManifestMismatch,
    Profile,
    RuntimeInfo,
    write_manifest,
)
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends import open_runner
from crackseg.edge.backends.base import BackendError
from crackseg.edge.backends.cuda import CudaError, CudaRuntime, cuda_runtime
from crackseg.edge.backends.trt import (
    TENSORRT_MODULES,
    TensorRTMissing,
    TensorRTRunner,
    load_tensorrt,
    profile_problem,
    tensorrt_available,
)
from crackseg.export.command import parse_shape
from crackseg.export.engine import (
    DEFAULT_PROFILE,
    EngineBuildError,
    TypingPlan,
    engine_name,
    plan_typing,
    resolve_profile,
)
from crackseg.export.onnx import convert_to_fp16, embed_spec, export_onnx
from crackseg.train.models import create_model

SPEC = ModelSpec(arch="scnet-t")
ORIN = RuntimeInfo("tensorrt", "10.3.0", "Orin", (8, 7))


# --- typing plan: which network mode and builder flags give the requested precision ----------------------


@pytest.mark.parametrize(
    ("precision", "onnx_is", "weak_typing", "forced", "expected"),
    [
        # TensorRT 10, FP32 ONNX: weak typing, precision by builder flag.
        ("fp32", "fp32", True, None, TypingPlan(strongly_typed=False)),
        ("fp16", "fp32", True, None, TypingPlan(strongly_typed=False, flags=("FP16",))),
        # An FP16 or Q/DQ ONNX carries its precision: strongly typed, no flags.
        ("fp16", "fp16", True, None, TypingPlan(strongly_typed=True)),
        ("int8", "int8", True, None, TypingPlan(strongly_typed=True)),
        # Forcing weak typing on a Q/DQ ONNX: the INT8 flag, still no calibrator.
        ("int8", "int8", True, False, TypingPlan(strongly_typed=False, flags=("INT8",))),
        # TensorRT 11 / RTX: always strongly typed.
        ("fp32", "fp32", False, None, TypingPlan(strongly_typed=True)),
        ("fp16", "fp16", False, None, TypingPlan(strongly_typed=True)),
        ("int8", "int8", False, None, TypingPlan(strongly_typed=True)),
    ],
)
def test_typing_plan(
    precision: str, onnx_is: str, weak_typing: bool, forced: bool | None, expected: TypingPlan
) -> None:
    assert plan_typing(precision, onnx_is, weak_typing=weak_typing, strongly_typed=forced) == expected


def test_dla_adds_gpu_fallback() -> None:
    plan = plan_typing("fp16", "fp32", weak_typing=True, dla=True)
    assert plan == TypingPlan(strongly_typed=False, flags=("FP16", "GPU_FALLBACK"))


@pytest.mark.parametrize(
    ("precision", "onnx_is", "weak_typing", "forced", "dla", "message"),
    [
        ("int8", "fp32", True, None, False, "built from a Q/DQ ONNX"),
        ("fp16", "int8", True, None, False, "quantized .*--precision int8"),
        ("fp32", "fp16", True, None, False, "float16 weights"),
        ("fp16", "fp32", False, None, False, r"strongly typed networks only.*export onnx --fp16"),
        ("fp16", "fp32", True, True, False, "needs the FP16 ONNX"),
        ("fp32", "fp32", False, False, False, "strongly typed networks only"),
        ("fp32", "fp32", True, None, True, "DLA cores run FP16 or INT8 only"),
    ],
)
def test_impossible_builds_are_explained(
    precision: str, onnx_is: str, weak_typing: bool, forced: bool | None, dla: bool, message: str
) -> None:
    with pytest.raises(EngineBuildError, match=message):
        plan_typing(precision, onnx_is, weak_typing=weak_typing, strongly_typed=forced, dla=dla)


# --- optimization profiles -------------------------------------------------------------------------------


def _tiny_crackseg_onnx(path: Path, dims: list[int | str]) -> Path:
    """A crackseg-signature ONNX file (``image`` -> ``prob``) without exporting a network: enough to plan a build."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sigmoid", ["mean"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [dims[0], 1, dims[2], dims[3]])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    embed_spec(model, SPEC)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("engine")
    return {
        "static": _tiny_crackseg_onnx(folder / "static.onnx", [1, 3, 64, 96]),
        "dynamic": _tiny_crackseg_onnx(folder / "dynamic.onnx", ["batch", 3, "height", "width"]),
    }


def test_static_onnx_fixes_the_profile(onnx_models: dict[str, Path]) -> None:
    model = onnx.load(str(onnx_models["static"]))
    shape = (1, 3, 64, 96)
    assert resolve_profile(model, SPEC, None) == Profile(shape, shape, shape)
    with pytest.raises(EngineBuildError, match=r"static \(1x3x64x96\).*--dynamic"):
        resolve_profile(model, SPEC, DEFAULT_PROFILE)


def test_dynamic_onnx_takes_the_requested_or_default_profile(onnx_models: dict[str, Path]) -> None:
    model = onnx.load(str(onnx_models["dynamic"]))
    assert resolve_profile(model, SPEC, None) == DEFAULT_PROFILE
    wide = Profile((1, 3, 32, 32), (2, 3, 384, 544), (4, 3, 1088, 1920))
    assert resolve_profile(model, SPEC, wide) == wide


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (Profile((1, 3, 64, 64), (1, 3, 500, 512), (1, 3, 1024, 1024)), "H must be a multiple of 32"),
        (Profile((1, 3, 64, 64), (1, 4, 512, 512), (1, 4, 1024, 1024)), "C must be 3"),
        (Profile((1, 3, 64, 64), (1, 3, 512, 512), (1, 3, 256, 256)), "not ordered"),
        (Profile((1, 3, 64), (1, 3, 512), (1, 3, 1024)), "has 3 dimensions, the input has 4"),
    ],
)
def test_bad_profiles_are_refused(onnx_models: dict[str, Path], profile: Profile, message: str) -> None:
    with pytest.raises(EngineBuildError, match=message):
        resolve_profile(onnx.load(str(onnx_models["dynamic"])), SPEC, profile)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512x512", (1, 3, 512, 512)), ("544X384", (1, 3, 384, 544)), ("2x3x64x96", (2, 3, 64, 96))],
)
def test_parse_shape(text: str, expected: tuple[int, ...]) -> None:
    """Two numbers are WxH, as every size; four are NCHW, the array's order."""
    assert parse_shape(text) == expected


def test_a_non_square_two_number_shape_notes_the_old_hxw_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_shape("640x480") == (1, 3, 480, 640)
    assert "deprecated" in capsys.readouterr().err
    parse_shape("512x512")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("text", ["512", "512x", "axb", "1x3x512", "0x512"])
def test_parse_shape_refuses_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="WxH or NxCxHxW"):
        parse_shape(text)


def test_runner_shape_check_names_the_offending_axis() -> None:
    assert profile_problem((1, 3, 512, 512), DEFAULT_PROFILE) is None
    assert profile_problem((1, 3, 64, 1024), DEFAULT_PROFILE) is None  # the bounds are inclusive
    problem = profile_problem((1, 3, 2048, 512), DEFAULT_PROFILE)
    assert problem is not None and "H 2048 not in [64, 1024]" in problem
    assert "expected a 4-d input" in (profile_problem((3, 512, 512), DEFAULT_PROFILE) or "")


# --- engine file names (as jetson-inference's tensorNet) ------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "dla", "expected"),
    [
        (ORIN, None, "models/scnet-t.fp16.trt10.3.0.orin.engine"),
        (
            RuntimeInfo("tensorrt", "10.13.0.35", "NVIDIA GeForce RTX 4090", (8, 9)),
            None,
            "models/scnet-t.fp16.trt10.13.0.35.geforce-rtx-4090.engine",
        ),
        (
            RuntimeInfo("tensorrt_rtx", "1.2.0", "NVIDIA RTX A2000", (8, 6)),
            None,
            "models/scnet-t.fp16.rtx1.2.0.rtx-a2000.engine",
        ),
        (ORIN, 1, "models/scnet-t.fp16.trt10.3.0.orin.dla1.engine"),
    ],
)
def test_engine_name_encodes_model_precision_tensorrt_and_gpu(
    runtime: RuntimeInfo, dla: int | None, expected: str
) -> None:
    assert engine_name(Path("models/scnet-t.onnx"), "fp16", runtime, dla) == Path(expected)


# --- TensorRT and CUDA missing: clear messages, not tracebacks -------------------------------------------------


def test_missing_tensorrt_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in TENSORRT_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(TensorRTMissing, match=r"TensorRT is not installed.*JetPack.*crackseg\[trt\]"):
        load_tensorrt()
    assert not tensorrt_available()


def test_type_stubs_alone_are_not_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in TENSORRT_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "tensorrt", type(sys)("tensorrt"))  # imports, but has no Builder
    with pytest.raises(TensorRTMissing, match="only type stubs are installed"):
        load_tensorrt()


def test_tensorrt_rtx_is_used_when_tensorrt_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    rtx = type(sys)("tensorrt_rtx")
    rtx.Builder = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", rtx)
    assert load_tensorrt() is rtx


def test_missing_cuda_runtime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crackseg.edge.backends.cuda._candidates", lambda: [])
    with pytest.raises(CudaError, match="libcudart"):
        CudaRuntime()


# --- the runner checks files and the manifest before TensorRT sees a byte ---------------------------------


def _manifest(engine: bytes, runtime: RuntimeInfo) -> EngineManifest:
    return EngineManifest(
        engine_sha256=sha256_bytes(engine),
        onnx_sha256="0" * 64,
        onnx_path="models/scnet-t.onnx",
        precision="fp16",
        profile=DEFAULT_PROFILE,
        builder=BuilderOptions(workspace_mib=1024),
        runtime=runtime,
        spec=SPEC,
    )


def test_engine_files_open_the_tensorrt_runner_without_importing_tensorrt(tmp_path: Path) -> None:
    assert isinstance(open_runner(tmp_path / "m.engine"), TensorRTRunner)
    assert isinstance(open_runner(tmp_path / "m.plan"), TensorRTRunner)


def test_runner_refuses_a_missing_engine(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="engine file not found"):
        TensorRTRunner(tmp_path / "none.engine").activate()


def test_runner_refuses_an_engine_without_manifest(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine")
    with pytest.raises(ManifestError, match="has no manifest"):
        TensorRTRunner(engine).activate()


@pytest.mark.parametrize(
    ("here", "content", "expected"),
    [
        (
            RuntimeInfo("tensorrt", "10.7.0", "Orin", (8, 7)),
            b"engine",
            "built with TensorRT 10.3.0, this machine has 10.7.0",
        ),
        (RuntimeInfo("tensorrt", "10.3.0", "Xavier", (7, 2)), b"engine", "built for Orin (compute capability 8.7)"),
        (ORIN, b"another engine", "not the one its manifest describes"),
    ],
)
def test_runner_refuses_a_stale_or_foreign_engine_before_deserializing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, here: RuntimeInfo, content: bytes, expected: str
) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(content)
    write_manifest(_manifest(b"engine", ORIN), engine)
    monkeypatch.setattr("crackseg.edge.backends.trt.current_runtime", lambda: here)
    # Without TensorRT here, reaching deserialization would raise TensorRTMissing instead.
    with pytest.raises(ManifestMismatch, match=re.escape(expected)) as info:
        TensorRTRunner(engine).activate()
    assert "crackseg export engine --onnx models/scnet-t.onnx --precision fp16" in str(info.value)
    assert "--rebuild" in str(info.value)


def test_engine_command_without_tensorrt_says_so(onnx_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from crackseg.edge.cli import main as cli_main
    from crackseg.edge.cli.registry import COMMANDS

    for module in TENSORRT_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(cli_main, "COMMANDS", tuple(command for command in COMMANDS if command.name == "export"))
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = cli_main.main(["export", "engine", "--onnx", str(onnx_models["dynamic"]), "--precision", "fp16"])
    assert code == 1
    assert "TensorRT is not installed" in errors.getvalue() and "Traceback" not in errors.getvalue()


# --- real builds: need TensorRT and an NVIDIA GPU ---------------------------------------------------------


@pytest.fixture(scope="module")
def scnet_onnx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """scnet-t exported static and dynamic, once TensorRT and a GPU are known to be present."""
    # pytest.importorskip("tensorrt") is not enough: the tensorrt-stubs package makes `import tensorrt` succeed.
    if not tensorrt_available():
        pytest.skip("TensorRT is not installed (JetPack, or pip install 'crackseg[trt]' on an NVIDIA GPU machine)")
    try:
        cuda_runtime().device()
    except CudaError as exc:
        pytest.skip(f"no usable CUDA device: {exc}")
    torch.manual_seed(0)
    model = create_model("scnet-t")
    folder = tmp_path_factory.mktemp("scnet")
    return {
        "static": export_onnx(model, SPEC, folder / "static.onnx", (64, 96)),
        "dynamic": export_onnx(model, SPEC, folder / "dynamic.onnx", (64, 64), dynamic=True),
    }


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("precision", "onnx_kind"),
    [("fp32", "dynamic"), ("fp16", "dynamic"), ("fp16", "dynamic-fp16")],
    ids=["fp32", "fp16-builder-flag", "fp16-onnx"],
)
def test_built_engine_runs_like_onnx_runtime(
    scnet_onnx: dict[str, Path], tmp_path: Path, precision: str, onnx_kind: str
) -> None:
    from crackseg.edge.backends.onnxrt import OnnxRuntimeRunner
    from crackseg.edge.backends.trt import trt
    from crackseg.export.engine import EngineFromOnnx, SaveEngine

    source = scnet_onnx["dynamic"]
    if onnx_kind == "dynamic-fp16":
        source = tmp_path / "dynamic.fp16.onnx"
        onnx.save(convert_to_fp16(onnx.load(str(scnet_onnx["dynamic"]))), str(source))
    elif precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        pytest.skip("this TensorRT has no FP16 builder flag (strongly typed only): covered by the fp16-onnx case")
    profile = Profile((1, 3, 64, 64), (1, 3, 64, 96), (2, 3, 128, 128))
    loader = EngineFromOnnx(source, precision, profile, timing_cache=tmp_path / "timing.cache")
    engine = SaveEngine(loader, tmp_path / "m.engine")()
    assert (tmp_path / "m.engine.json").is_file() and (tmp_path / "timing.cache").is_file()
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 96, 128)).astype(np.float32)
    with TensorRTRunner(engine, onnx=source) as trt_runner:
        assert trt_runner.spec == SPEC
        assert trt_runner.signature is not None and trt_runner.signature.input_shape == (None, 3, None, None)
        first = trt_runner.infer(image)
        assert trt_runner.thresholds_on_device  # engines built now make the mask on the GPU
        for threshold in (0.3, 0.7):  # a changed threshold reaches the device
            np.testing.assert_array_equal(trt_runner.infer_mask(image, threshold), first > threshold)
        second = trt_runner.infer(image[:, :, :64, :64])  # another shape in the same profile
        with pytest.raises(BackendError, match="outside the engine's profile"):
            trt_runner.infer(np.zeros((1, 3, 256, 256), np.float32))
    with OnnxRuntimeRunner(scnet_onnx["dynamic"], ("CPUExecutionProvider",)) as ort_runner:
        expected = ort_runner.infer(image)
    assert first.shape == (1, 1, 96, 128) and second.shape == (1, 1, 64, 64)
    # Untrained weights amplify rounding (TF32 is on by default for FP32 engines: 10-bit mantissas like FP16;
    # rounding weights to FP16 alone moves this model's output by 0.016 on average): these bounds only catch
    # wrong buffers, shapes and layouts, the real accuracy check is crackseg eval on a trained model.
    assert np.abs(first - expected).mean() < (0.05 if precision == "fp32" else 0.1)


@pytest.mark.gpu
def test_engine_command_reuses_refuses_and_rebuilds(
    scnet_onnx: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from crackseg.edge.cli import main as cli_main
    from crackseg.edge.cli.registry import COMMANDS

    monkeypatch.setattr(cli_main, "COMMANDS", tuple(command for command in COMMANDS if command.name == "export"))
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(scnet_onnx["static"].read_bytes())
    args = ["export", "engine", "--onnx", str(onnx_path), "--precision", "fp32", "--out", str(tmp_path / "m.engine")]
    assert cli_main.main(args) == 0
    assert cli_main.main(args) == 0
    assert "is up to date" in capsys.readouterr().out
    assert cli_main.main([*args, "--workspace-mib", "512"]) == 1
    assert "builder option workspace mib 1024 -> 512" in capsys.readouterr().err
    assert cli_main.main([*args, "--workspace-mib", "512", "--rebuild"]) == 0
    onnx_path.write_bytes(scnet_onnx["dynamic"].read_bytes())  # the model changed: the engine is stale
    assert cli_main.main(args) == 1
    assert "m.onnx changed since the engine was built" in capsys.readouterr().err
