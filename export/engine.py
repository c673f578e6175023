"""ONNX to TensorRT engine, written as Polygraphy-style lazy loaders, with a manifest beside every engine.

``EngineFromOnnx(...)`` only stores its arguments; calling it parses and builds, returning the
serialized engine. ``SaveEngine(loader, path)()`` builds, then writes the engine and its manifest.

Precision and typing. TensorRT 10 offers two ways to lower precision: *weakly typed* networks with
builder flags (``FP16``: TensorRT may pick FP16 kernels for an FP32 ONNX; ``INT8``), and *strongly
typed* networks, where every tensor keeps the type the ONNX gives it. TensorRT 11 and TensorRT for
RTX only build strongly typed networks (the precision flags and INT8 calibrators are gone), so there
FP16 needs an FP16 ONNX (``crackseg export onnx --fp16``) and INT8 a Q/DQ ONNX (``crackseg calib``).
The rules are in :func:`plan_typing`. INT8 is explicit quantization only: no calibrator, ever.

``tensorrt`` vs ``tensorrt_rtx`` (imported in that order, see ``crackseg.edge.backends.trt``):

- RTX is strongly typed only, has no INT8 calibrator and no DLA; Q/DQ INT8 and FP16 ONNX work.
- RTX compiles ahead of time for a set of GPU architectures (portable engines by default); crackseg
  asks for the current GPU, so the manifest's GPU check means the same with both modules.
- Both use the same builder, parser, timing-cache and runtime calls used here.

Every engine also makes the crack mask on the GPU (:func:`add_device_mask`): a ``threshold`` input and a
bool ``mask`` output beside ``prob``, so the runtime copies a quarter of the float32 map to the host.

Engine file names encode model, precision, TensorRT version and GPU (as jetson-inference's tensorNet
does): ``scnet-t.fp16.trt10.3.0.orin.engine``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from tqdm import tqdm

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.hashing import sha256_bytes, sha256_file
from crackseg.edge.artifact.manifest import (
    CALIBRATION_KEY,
    BuilderOptions,
    EngineManifest,
    Profile,
    RuntimeInfo,
    write_manifest,
)
from crackseg.edge.artifact.precision import PRECISIONS, Precision
from crackseg.edge.artifact.spec import INPUT_NAME, MASK_NAME, OUTPUT_NAME, THRESHOLD_NAME, ModelSpec
from crackseg.edge.backends.trt import build_runtime, trt
from crackseg.export.onnx import onnx_precision, read_onnx

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_WORKSPACE_MIB",
    "EngineBuild",
    "EngineBuildError",
    "EngineFromOnnx",
    "SaveEngine",
    "TypingPlan",
    "engine_name",
    "plan_typing",
    "resolve_profile",
]

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 1024
"""Builder scratch memory cap: leaves room for the camera, the pipeline and the OS on 4-8 GB Jetsons."""
DEFAULT_PROFILE = Profile(min=(1, 3, 64, 64), opt=(1, 3, 512, 512), max=(1, 3, 1024, 1024))
"""For dynamic-shape ONNX files: tuned for 512x512 tiles, accepts anything from 64x64 to 1024x1024."""


class EngineBuildError(CracksegError):
    """An engine cannot be built as requested; the message says why and what to do instead."""


@dataclass(frozen=True)
class TypingPlan:
    """How to get the requested precision out of this ONNX file with this TensorRT."""

    strongly_typed: bool
    flags: tuple[str, ...] = ()
    """``trt.BuilderFlag`` names to set."""


def plan_typing(
    precision: Precision,
    onnx_is: Precision,
    *,
    weak_typing: bool,
    strongly_typed: bool | None = None,
    dla: bool = False,
) -> TypingPlan:
    """The network typing mode and builder flags for a build, or an ``EngineBuildError`` saying why not.

    Args:
        precision: the requested engine precision.
        onnx_is: the ONNX file's own precision (``int8`` for Q/DQ, ``fp16`` for float16 weights).
        weak_typing: whether this TensorRT still has precision flags (TensorRT 10: yes; 11 and RTX: no).
        strongly_typed: force the typing mode; ``None`` picks strong typing whenever the ONNX file
            already carries the precision (Q/DQ or FP16), weak typing for an FP32 ONNX on TensorRT 10.
        dla: build for a DLA core (adds GPU fallback for layers DLA cannot run).
    """
    if onnx_is == "int8" and precision != "int8":
        raise EngineBuildError("the ONNX file is quantized (Q/DQ nodes): build it with --precision int8")
    if precision == "int8" and onnx_is != "int8":
        raise EngineBuildError(
            "INT8 engines are built from a Q/DQ ONNX file (explicit quantization, no calibrator): "
            "make one with 'crackseg calib', then build from it"
        )
    if onnx_is == "fp16" and precision != "fp16":
        raise EngineBuildError(
            "the ONNX file has float16 weights: build it with --precision fp16, or use the FP32 ONNX"
        )
    if dla and precision == "fp32":
        raise EngineBuildError("DLA cores run FP16 or INT8 only: choose --precision fp16 or int8")
    fallback = ("GPU_FALLBACK",) if dla else ()
    needs_fp16_onnx = precision == "fp16" and onnx_is == "fp32"
    if not weak_typing:
        if strongly_typed is False:
            raise EngineBuildError("this TensorRT builds strongly typed networks only")
        if needs_fp16_onnx:
            raise EngineBuildError(
                "this TensorRT builds strongly typed networks only, so an FP16 engine needs an FP16 ONNX file: "
                "write one with 'crackseg export onnx --fp16' and build from the .fp16.onnx file"
            )
        return TypingPlan(strongly_typed=True, flags=fallback)
    if strongly_typed is None:
        strongly_typed = onnx_is != "fp32"
    if strongly_typed:
        if needs_fp16_onnx:
            raise EngineBuildError(
                "a strongly typed network runs at the ONNX file's precision: FP16 needs the FP16 ONNX "
                "('crackseg export onnx --fp16'), or build this one without --strongly-typed"
            )
        return TypingPlan(strongly_typed=True, flags=fallback)
    precision_flags = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8",)}[precision]
    return TypingPlan(strongly_typed=False, flags=precision_flags + fallback)


def _input_dims(model: onnx.ModelProto) -> tuple[int | None, ...]:
    (value,) = [value for value in model.graph.input if value.name == INPUT_NAME]
    return tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim)


def resolve_profile(model: onnx.ModelProto, spec: ModelSpec, requested: Profile | None) -> Profile:
    """The optimization profile for ``model``: fixed by a static input, else ``requested`` or the default, checked."""
    dims = _input_dims(model)
    if None not in dims:
        static = tuple(dim for dim in dims if dim is not None)
        fixed = Profile(static, static, static)
        if requested is not None and requested != fixed:
            raise EngineBuildError(
                f"the ONNX input is static ({'x'.join(map(str, static))}), so its profile is fixed: "
                f"drop the shape options, or re-export with 'crackseg export onnx --dynamic'"
            )
        return fixed
    profile = requested or DEFAULT_PROFILE
    for label, shape in (("min", profile.min), ("opt", profile.opt), ("max", profile.max)):
        if len(shape) != len(dims):
            raise EngineBuildError(f"{label} shape {shape} has {len(shape)} dimensions, the input has {len(dims)}")
        for axis, size, fixed_size in zip("NCHW", shape, dims, strict=True):
            if fixed_size is not None and size != fixed_size:
                raise EngineBuildError(f"{label} shape {shape}: {axis} must be {fixed_size}")
            if axis in "HW" and size % spec.size_multiple:
                raise EngineBuildError(f"{label} shape {shape}: {axis} must be a multiple of {spec.size_multiple}")
    ordered = all(low <= mid <= high for low, mid, high in zip(profile.min, profile.opt, profile.max, strict=True))
    if not ordered:
        raise EngineBuildError(f"profile {profile} is not ordered: every size must satisfy min <= opt <= max")
    return profile


def engine_name(
    onnx_path: str | Path,
    precision: str,
    runtime: RuntimeInfo,
    dla_core: int | None = None,
    rtx_targets: tuple[str, ...] = (),
) -> Path:
    """``<dir>/<onnx stem>.<precision>.<trt|rtx><version>.<gpu or targets>[.dla<N>].engine`` beside the ONNX file."""
    onnx_path = Path(onnx_path)
    stem = onnx_path.name.removesuffix(".onnx")
    module = "rtx" if "rtx" in runtime.tensorrt_module else "trt"
    where = "-".join(rtx_targets) if rtx_targets else runtime.gpu_name.removeprefix("NVIDIA ")
    gpu = re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-") or "gpu"
    dla = f".dla{dla_core}" if dla_core is not None else ""
    return onnx_path.with_name(f"{stem}.{precision}.{module}{runtime.tensorrt_version}.{gpu}{dla}.engine")


@dataclass(frozen=True)
class EngineBuild:
    """One resolved build: what :meth:`EngineFromOnnx.plan` decided, and what the manifest records."""

    onnx_path: Path
    onnx_sha256: str
    spec: ModelSpec
    precision: Precision
    profile: Profile
    builder: BuilderOptions
    flags: tuple[str, ...]
    calibration_hash: str | None

    def manifest(self, engine: bytes, runtime: RuntimeInfo) -> EngineManifest:
        return EngineManifest(
            engine_sha256=sha256_bytes(engine),
            onnx_sha256=self.onnx_sha256,
            onnx_path=str(self.onnx_path),
            precision=self.precision,
            profile=self.profile,
            builder=self.builder,
            runtime=runtime,
            spec=self.spec,
            calibration_hash=self.calibration_hash,
        )


class EngineFromOnnx:
    """Lazily builds a serialized TensorRT engine from a crackseg ONNX file.

    Args:
        onnx_path: FP32, FP16 or Q/DQ (INT8) crackseg ONNX file.
        precision: ``fp32``, ``fp16`` or ``int8`` (see :func:`plan_typing` for what each needs).
        profile: min/opt/max NCHW shapes for a dynamic-shape ONNX (default :data:`DEFAULT_PROFILE`).
        workspace_mib: cap on the builder's scratch memory.
        dla_core: build for this DLA core (Jetson AGX/NX), with GPU fallback.
        timing_cache: file of measured kernel timings, read before and written after the build, so
            rebuilding on the same machine skips most of the tuning.
        strongly_typed: force the typing mode (``None``: see :func:`plan_typing`).
        progress: show the builder's phases as progress bars.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        precision: Precision = "fp16",
        profile: Profile | None = None,
        workspace_mib: int = DEFAULT_WORKSPACE_MIB,
        dla_core: int | None = None,
        timing_cache: str | Path | None = None,
        strongly_typed: bool | None = None,
        progress: bool = True,
        rtx_targets: tuple[str, ...] = (),
    ) -> None:
        if precision not in PRECISIONS:
            raise EngineBuildError(f"unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
        if workspace_mib < 1:
            raise EngineBuildError(f"workspace must be at least 1 MiB, not {workspace_mib}")
        self.onnx_path = Path(onnx_path)
        self.precision = precision
        self.profile = profile
        self.workspace_mib = workspace_mib
        self.dla_core = dla_core
        self.timing_cache = Path(timing_cache) if timing_cache is not None else None
        self.strongly_typed = strongly_typed
        self.progress = progress
        self.rtx_targets = tuple(rtx_targets)

    def plan(self) -> EngineBuild:
        """Reads the ONNX file and resolves profile, typing and options, without building anything."""
        model, spec = read_onnx(self.onnx_path)
        typing = plan_typing(
            self.precision,
            onnx_precision(model),
            weak_typing=hasattr(trt.BuilderFlag, "FP16"),
            strongly_typed=self.strongly_typed,
            dla=self.dla_core is not None,
        )
        calibration = {prop.key: prop.value for prop in model.metadata_props}.get(CALIBRATION_KEY)
        return EngineBuild(
            onnx_path=self.onnx_path,
            onnx_sha256=sha256_file(self.onnx_path),
            spec=spec,
            precision=self.precision,
            profile=resolve_profile(model, spec, self.profile),
            builder=BuilderOptions(
                workspace_mib=self.workspace_mib,
                dla_core=self.dla_core,
                strongly_typed=typing.strongly_typed,
                timing_cache=str(self.timing_cache) if self.timing_cache is not None else None,
                rtx_targets=self.rtx_targets,
            ),
            flags=typing.flags,
            calibration_hash=sha256_bytes(calibration.encode()) if calibration is not None else None,
        )

    def __call__(self) -> bytes:
        return self.build(self.plan())

    def build(self, plan: EngineBuild) -> bytes:
        """Parses and builds ``plan``; returns the serialized engine."""
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        creation_flags = 0
        if plan.builder.strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            creation_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(creation_flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(plan.onnx_path)):
            errors = "; ".join(str(parser.get_error(index).desc()) for index in range(parser.num_errors))
            raise EngineBuildError(f"TensorRT's ONNX parser rejected {plan.onnx_path}: {errors}")
        add_device_mask(network)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.builder.workspace_mib << 20)
        for flag in plan.flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        inputs = {network.get_input(index).name: network.get_input(index) for index in range(network.num_inputs)}
        dims = inputs[INPUT_NAME].shape
        if any(dims[index] < 0 for index in range(len(dims))):
            profile = builder.create_optimization_profile()
            shapes = (plan.profile.min, plan.profile.opt, plan.profile.max)
            profile.set_shape(INPUT_NAME, *(trt.Dims(list(shape)) for shape in shapes))
            config.add_optimization_profile(profile)
        if plan.builder.dla_core is not None:
            _use_dla(builder, config, plan.builder.dla_core)
        _target_gpus(config, plan.builder.rtx_targets)
        cache_path = Path(plan.builder.timing_cache) if plan.builder.timing_cache else None
        if cache_path is not None:
            _load_timing_cache(config, cache_path)
        monitor = _progress_monitor() if self.progress else None
        if monitor is not None:
            config.progress_monitor = monitor
        log.debug("building a %s engine from %s", plan.precision, plan.onnx_path)
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            largest = "x".join(str(side) for side in plan.profile.max)
            raise EngineBuildError(
                f"TensorRT failed to build an engine from {plan.onnx_path} within a {plan.builder.workspace_mib} MiB "
                f"workspace for inputs up to {largest} (its log above says why; when it ran out of memory or found "
                "no tactic within the workspace limit, raise the workspace or lower the max shape)"
            )
        log.info("built in %.0f s", time.perf_counter() - start)
        if cache_path is not None:
            _atomic_write(cache_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)


def add_device_mask(network: trt.INetworkDefinition) -> None:
    """Adds the output ``mask = prob > threshold`` (bool) and the input ``threshold`` (float32 1x1x1x1).

    ``prob`` is float32 at every precision (an FP16 ONNX keeps float32 I/O), so the device compares
    exactly as the host compares a float32 map with the threshold: the same mask, bit for bit. The
    threshold is an input, not a constant, so ``crackseg run --threshold`` needs no rebuild.
    """
    outputs = {network.get_output(index).name: network.get_output(index) for index in range(network.num_outputs)}
    prob = outputs[OUTPUT_NAME]
    if prob.dtype != trt.float32:
        raise EngineBuildError(f"output '{OUTPUT_NAME}' is {prob.dtype}, not float32: not a crackseg ONNX")
    threshold = network.add_input(THRESHOLD_NAME, trt.float32, trt.Dims([1, 1, 1, 1]))
    mask = network.add_elementwise(prob, threshold, trt.ElementWiseOperation.GREATER).get_output(0)
    mask.name = MASK_NAME
    network.mark_output(mask)


class SaveEngine:
    """Builds with ``loader`` and writes the engine to ``path`` and its manifest to ``<path>.json``."""

    def __init__(self, loader: EngineFromOnnx, path: str | Path) -> None:
        self.loader = loader
        self.path = Path(path)

    def __call__(self) -> Path:
        plan = self.loader.plan()
        engine = self.loader.build(plan)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, engine)
        write_manifest(plan.manifest(engine, build_runtime(plan.builder.rtx_targets)), self.path)
        return self.path


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _use_dla(builder: trt.Builder, config: trt.IBuilderConfig, core: int) -> None:
    cores = getattr(builder, "num_DLA_cores", 0)  # absent in TensorRT for RTX
    if core < 0 or core >= cores:
        raise EngineBuildError(f"DLA core {core} requested, but this device has {cores} DLA cores")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core


def _target_gpus(config: trt.IBuilderConfig, rtx_targets: tuple[str, ...]) -> None:
    """TensorRT for RTX: build for the named compute capabilities, else for this GPU only.

    Named targets make an ahead-of-time build possible on a machine without a GPU (the engine is
    specialised on the target GPU at load time). Plain TensorRT always builds for the current GPU.
    """
    capability = getattr(trt, "ComputeCapability", None)
    if capability is None:
        if rtx_targets:
            raise EngineBuildError("ahead-of-time targets (--rtx-target) need TensorRT for RTX")
        return
    unknown = [name for name in rtx_targets if not hasattr(capability, name)]
    if unknown:
        known = [name for name in dir(capability) if name.startswith("SM")]
        raise EngineBuildError(f"unknown TensorRT for RTX target(s) {unknown}; known: {', '.join(known)}")
    targets = [getattr(capability, name) for name in rtx_targets] or [capability.CURRENT]
    rtx_config: Any = config
    rtx_config.num_compute_capabilities = len(targets)
    for index, target in enumerate(targets):
        rtx_config.set_compute_capability(target, index)


def _load_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    """Starts from the cache file if it exists and fits this GPU and TensorRT, else from an empty cache."""
    data = path.read_bytes() if path.is_file() else b""
    if not config.set_timing_cache(config.create_timing_cache(data), False):
        log.warning("timing cache %s is from another GPU or TensorRT version; starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _progress_monitor() -> trt.IProgressMonitor | None:
    """Builder phases as nested tqdm bars (TensorRT's IProgressMonitor), or ``None`` where it is missing."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class TqdmMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, tqdm[Any]] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.bars[phase_name] = tqdm(
                total=num_steps, desc=phase_name, position=len(self.bars), leave=False, unit="step", dynamic_ncols=True
            )

        def step_complete(self, phase_name: str, step: int) -> bool:
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return TqdmMonitor()
