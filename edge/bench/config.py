"""The sweep ``crackseg bench`` measures: models x backends x precisions x input sizes x batch sizes.

One point of that product is a :class:`Case`. :func:`plan` checks every case before anything is
measured (backend and precision names, whether the backend runs that precision, whether it can load
that model, the optional packages and the GPU it needs, the model file's own precision and shape
limits), so a typo or a missing GPU fails in the first seconds with one line, not halfway through.

Backends (:data:`BACKENDS`) are ONNX Runtime with one execution provider each (``ort-cpu``,
``ort-cuda``, ``ort-trt``; a provider that is absent or falls back to another is an error, never a
silent CPU run), the native TensorRT runner (``tensorrt``) and PyTorch (``torch-cpu``, ``torch-cuda``).
A model is a file (``.onnx``, ``.engine``/``.plan``, ``.safetensors``: used as it is) or a registered
variant name such as ``scnet-t``: a random-initialized network, exported on the fly (needs torch),
which is enough to measure speed before a model is trained.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Literal, cast

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.kinds import MODEL_SUFFIXES, model_kind
from crackseg.edge.artifact.manifest import Profile
from crackseg.edge.artifact.precision import PRECISIONS, Precision
from crackseg.edge.artifact.size import DEFAULT_INPUT_SIZE, Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS
from crackseg.edge.runtime.stats import StatsMode, check_stats_mode

__all__ = [
    "BACKENDS",
    "REPLAY",
    "Backend",
    "BenchConfig",
    "BenchError",
    "Case",
    "MeasureConfig",
    "ModelRef",
    "plan",
    "require",
]

ModelKind = Literal["variant", "onnx", "engine", "checkpoint"]
REPLAY = "replay"
"""The replay runtime: a measuring instrument (``crackseg.edge.runtime.replay``), not a way to run a model."""

_LOADS: dict[str, frozenset[ModelKind]] = {
    "onnxruntime": frozenset({"onnx", "variant"}),
    "tensorrt": frozenset({"engine", "onnx", "variant"}),
    "pytorch": frozenset({"checkpoint", "variant"}),
    REPLAY: frozenset({"onnx"}),
}
"""Runtime -> model kinds it can run (ONNX for TensorRT is built into an engine first)."""
_EXPORT_HINT = "pip install 'crackseg[export]'"


class BenchError(CracksegError):
    """The benchmark cannot run as asked; the message names the case or option and what to do."""


@dataclass(frozen=True)
class Backend:
    """One way to run a model.

    Attributes:
        name: what the user types (``ort-cpu``).
        runtime: ``onnxruntime``, ``tensorrt``, ``pytorch`` or ``replay``.
        precisions: precisions this backend runs for real (not by silently upcasting).
        provider: the ONNX Runtime execution provider, the only one the session may use.
        device: the PyTorch device.
        gpu: needs an NVIDIA GPU.
        runner_options: keyword arguments of the runner (PyTorch's speed-ups, see ``TorchRunner``).
    """

    name: str
    runtime: str
    precisions: tuple[Precision, ...]
    provider: str | None = None
    device: str | None = None
    gpu: bool = False
    runner_options: tuple[tuple[str, bool | str], ...] = ()


_CHANNELS_LAST: tuple[tuple[str, bool | str], ...] = (("channels_last", True),)

BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("ort-cpu", "onnxruntime", PRECISIONS, provider="CPUExecutionProvider"),
        Backend("ort-cuda", "onnxruntime", ("fp32", "fp16"), provider="CUDAExecutionProvider", gpu=True),
        Backend("ort-trt", "onnxruntime", ("fp32",), provider="TensorrtExecutionProvider", gpu=True),
        Backend("tensorrt", "tensorrt", PRECISIONS, gpu=True),
        Backend("torch-cpu", "pytorch", ("fp32",), device="cpu"),
        Backend("torch-cuda", "pytorch", ("fp32", "fp16"), device="cuda", gpu=True),
        Backend("torch-cuda-cl", "pytorch", ("fp32", "fp16"), device="cuda", gpu=True, runner_options=_CHANNELS_LAST),
        Backend(
            "torch-cuda-graph",
            "pytorch",
            ("fp32", "fp16"),
            device="cuda",
            gpu=True,
            runner_options=(*_CHANNELS_LAST, ("cuda_graph", True)),
        ),
        Backend(
            "torch-cuda-compile",
            "pytorch",
            ("fp32", "fp16"),
            device="cuda",
            gpu=True,
            runner_options=(*_CHANNELS_LAST, ("compile_mode", "reduce-overhead")),
        ),
        Backend(REPLAY, REPLAY, ("fp32",)),
    )
}
"""Backend names -> what they run. INT8 on ONNX Runtime CUDA would run Q/DQ as float and FP16/INT8 through
the ONNX Runtime TensorRT provider would need provider options: use ``tensorrt`` for those. The PyTorch CUDA
backends add one speed-up each: channels-last layout (``-cl``), plus CUDA graph replay (``-graph``), or plus
``torch.compile`` in its ``reduce-overhead`` mode (Inductor fusion and CUDA graphs; ``-compile``). ``replay`` is a
measuring instrument: the ONNX model's real maps (ONNX Runtime, CPU), recorded beforehand, each returned after
``--replay-ms`` of sleep, so the runtime around inference is measured at any inference rate on any machine."""


@dataclass(frozen=True)
class ModelRef:
    """A model as the user named it: a registered variant, or a file whose suffix says what it is."""

    name: str
    """Variant name or file name, as tables show it."""
    kind: ModelKind
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        path = Path(text).expanduser()
        kind = model_kind(path)
        if kind is not None:
            if not path.is_file():
                raise BenchError(f"model file not found: {path}")
            return cls(path.name, kind, path.resolve())
        if path.exists() or path.suffix or "/" in text:
            raise BenchError(
                f"cannot benchmark {text!r}: a model is a variant name (e.g. scnet-t) or a "
                f"{', '.join(MODEL_SUFFIXES)} file"
            )
        return cls(text, "variant")


@dataclass(frozen=True)
class MeasureConfig:
    """How long and how each case is measured.

    Attributes:
        warmup_s: raw level: run at least this long (and at least once) before timing.
        iterations: raw level: time exactly this many calls (overrides ``duration_s``).
        duration_s: raw level: time calls for this long, and at least ``min_iterations`` of them.
        min_iterations: raw level: fewest timed calls when timing by duration.
        end_to_end: also run the pipeline, the pipeline under load and the naive loop.
        inspection: also run the pipeline with ``crackseg run``'s inspection outputs on (the recording with camera
            thumbnails, an overlay video file and pose tagging from MAVLink), right after the plain pipeline run;
            the recorder traces cracks for the inventory (five frames a second), which ``crackseg report`` builds.
        e2e_duration_s: how long each end-to-end run captures frames.
        load: the load point's source rate, as a fraction of the raw throughput.
        source: frame source URI for the end-to-end runs (synthetic frames come at the case's input size).
        frame_pool: distinct frames read from the source once and replayed.
        encoding: mask encoding on the wire (a name of ``crackseg.edge.runtime.sinks.publish_zmq.ENCODINGS``).
        threads: ONNX Runtime intra-op threads (``None``: its default).
        calib_frames: synthetic frames used to calibrate an INT8 model made on the fly.
        replay_ms: the replay backend's latency per inference call.
        postprocess_workers: the pipeline's postprocessing threads (``None``: its default, one per usable core).
        stats: how the end-to-end runs measure crack statistics (``crackseg.edge.runtime.stats.STATS_MODES``).
    """

    warmup_s: float = 1.0
    iterations: int | None = None
    duration_s: float = 5.0
    min_iterations: int = 10
    end_to_end: bool = True
    inspection: bool = False
    e2e_duration_s: float = 10.0
    load: float = 0.8
    source: str = "synthetic://"
    frame_pool: int = 16
    encoding: str = "packbits"
    threads: int | None = None
    calib_frames: int = 8
    replay_ms: float = 5.0
    postprocess_workers: int | None = None
    stats: StatsMode = "exact"

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}, got {value}"
            for name, value, ok, rule in (
                ("warm-up", self.warmup_s, self.warmup_s >= 0, ">= 0"),
                ("iterations", self.iterations, self.iterations is None or self.iterations >= 1, ">= 1"),
                ("duration", self.duration_s, self.duration_s > 0, "> 0"),
                ("minimum iterations", self.min_iterations, self.min_iterations >= 1, ">= 1"),
                ("end-to-end duration", self.e2e_duration_s, self.e2e_duration_s > 0, "> 0"),
                ("load", self.load, 0 < self.load <= 1, "in (0, 1]"),
                ("frame pool", self.frame_pool, self.frame_pool >= 1, ">= 1"),
                ("threads", self.threads, self.threads is None or self.threads >= 1, ">= 1"),
                ("calibration frames", self.calib_frames, self.calib_frames >= 1, ">= 1"),
                ("replay latency", self.replay_ms, self.replay_ms >= 0, ">= 0 ms"),
                (
                    "postprocessing workers",
                    self.postprocess_workers,
                    self.postprocess_workers is None or self.postprocess_workers >= 1,
                    ">= 1",
                ),
            )
            if not ok
        ]
        if self.encoding not in ENCODINGS:
            problems.append(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        try:
            check_stats_mode(self.stats)
        except ValueError as exc:
            problems.append(str(exc))
        if self.inspection and not self.end_to_end:
            problems.append("the inspection run is an end-to-end run: drop --no-e2e")
        if problems:
            raise BenchError("; ".join(problems))


@dataclass(frozen=True)
class BenchConfig:
    """The sweep: every combination of these lists is one case (see :func:`plan`).

    Attributes:
        models: variant names or model files; empty means the bundled model.
        backends: names of :data:`BACKENDS`.
        precisions: ``fp32``, ``fp16``, ``int8``.
        sizes: network input sizes.
        batches: batch sizes (the end-to-end level runs for batch 1 only: the pipeline infers one frame per call).
        measure: durations and end-to-end settings.
        cache_dir: keep on-the-fly artifacts here for later runs (``None``: a temporary directory).
    """

    models: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("ort-cpu",)
    precisions: tuple[str, ...] = ("fp32",)
    sizes: tuple[Size, ...] = (DEFAULT_INPUT_SIZE,)
    batches: tuple[int, ...] = (1,)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    cache_dir: Path | None = None


@dataclass(frozen=True)
class Case:
    """One configuration of the sweep.

    Attributes:
        model: the model as named.
        backend: how it runs.
        precision: the precision measured.
        size: the network input size.
        batch: images per inference call.
        source_precision: the model's own precision (a variant exports as fp32); ``None`` when it cannot be
            read here (an ONNX file without the ``onnx`` package): the file is then taken as ``precision``.
    """

    model: ModelRef
    backend: Backend
    precision: Precision
    size: Size
    batch: int
    source_precision: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model.name} {self.backend.name} {self.precision} {self.size} b{self.batch}"

    @property
    def converts(self) -> bool:
        """The model must be converted to ``precision`` (FP16 or Q/DQ INT8 ONNX) before it runs."""
        return self.source_precision == "fp32" and self.precision != "fp32" and self.backend.runtime != "pytorch"


def _choose(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BenchError(f"unknown {kind} {name!r}{hint}; expected one of {', '.join(known)}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ValueError, ImportError):  # blocked with sys.modules[module] = None, or a broken parent
        return False


def require(module: str, purpose: str, hint: str) -> None:
    """Raise a :class:`BenchError` saying ``purpose`` needs ``module`` (and how to get it) if it is missing."""
    if not _importable(module):
        raise BenchError(f"{purpose} needs the Python package {module!r}, which is not installed: {hint}")


@dataclass(frozen=True)
class _ModelFacts:
    """What a model says about itself, read without loading it into a runtime (``None``: cannot tell)."""

    spec: ModelSpec | None = None
    precision: str | None = None
    engine_profile: Profile | None = None


def _model_facts(model: ModelRef) -> _ModelFacts:
    """Spec and precision of a variant, an ONNX file (when ``onnx`` is installed) or an engine (its manifest)."""
    if model.kind == "variant":
        require("torch", f"model variant {model.name}", "pip install 'crackseg[train]'")
        _check_variant(model.name)
        from crackseg.train.models import create_model, create_spec

        return _ModelFacts(create_spec(model.name, create_model(model.name)), "fp32")
    assert model.path is not None  # every other kind is a file
    if model.kind == "engine":
        from crackseg.edge.artifact.manifest import read_manifest

        manifest = read_manifest(model.path)
        return _ModelFacts(manifest.spec, manifest.precision, manifest.profile)
    if model.kind == "onnx" and _importable("onnx"):
        from crackseg.export.onnx import onnx_precision, read_onnx

        graph, spec = read_onnx(model.path)
        return _ModelFacts(spec, onnx_precision(graph))
    return _ModelFacts()


def _check_pairing(case: Case) -> None:
    """The backend runs this precision and can load this kind of model."""
    backend, precision, model = case.backend, case.precision, case.model
    if precision not in backend.precisions:
        others = [name for name, other in BACKENDS.items() if precision in other.precisions]
        raise BenchError(
            f"backend {backend.name} does not run {precision} (it runs {', '.join(backend.precisions)}); "
            f"backends that run {precision}: {', '.join(others)}"
        )
    if model.kind not in _LOADS[backend.runtime]:
        raise BenchError(
            f"backend {backend.name} cannot run {model.name} (a {model.kind} file); it runs "
            f"{' or '.join(sorted(_LOADS[backend.runtime]))} models"
        )


def _check_packages(case: Case, measure: MeasureConfig) -> None:
    """Every optional package this case needs is installed."""
    backend, model = case.backend, case.model
    if backend.runtime in ("onnxruntime", REPLAY):
        require("onnxruntime", f"backend {backend.name}", "pip install 'crackseg[edge]'")
    if backend.runtime == "pytorch":
        require("torch", f"backend {backend.name}", "pip install 'crackseg[train]'")
    elif model.kind == "variant":
        for module in ("torch", "onnx", "onnxslim"):
            require(module, f"exporting variant {model.name} (a random-init model) to ONNX", _EXPORT_HINT)
    if backend.runtime == "tensorrt" and model.kind != "engine":
        require("onnx", f"building the TensorRT engine of {case.label}", "pip install 'crackseg[trt]'")
    if case.converts:
        require("onnx", f"making the {case.precision} ONNX model of {case.label}", _EXPORT_HINT)
    if case.converts and case.precision == "int8":
        require("onnxruntime", "INT8 quantization (Q/DQ insertion)", _EXPORT_HINT)
        require("cv2", "INT8 calibration on synthetic frames", "pip install 'crackseg[edge]'")
    if measure.end_to_end and case.batch == 1:
        for module in ("zmq", "cv2"):
            require(module, "the end-to-end level (--no-e2e skips it)", "pip install 'crackseg[edge]'")
        if measure.inspection:
            require("pymavlink", "--inspection (pose tagging from MAVLink)", "pip install 'crackseg[pose]'")


def _check_variant(name: str) -> None:
    from crackseg.train.models import is_model, list_models

    if not is_model(name):
        _choose("model variant", name, list_models())


def _check_device(backend: Backend) -> None:
    """The runtime, provider and GPU the backend needs are present."""
    if backend.runtime == "tensorrt":
        from crackseg.edge.backends.trt import load_tensorrt

        load_tensorrt()  # raises TensorRTMissing with install instructions
    if backend.provider is not None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        if backend.provider not in available:
            raise BenchError(
                f"backend {backend.name}: this ONNX Runtime has no {backend.provider} (it has {', '.join(available)})"
                + ("; install onnxruntime-gpu" if backend.gpu else "")
            )
    if backend.runtime == "pytorch" and backend.gpu:
        import torch

        if not torch.cuda.is_available():
            raise BenchError(f"backend {backend.name} needs a CUDA GPU, and PyTorch sees none")
    elif backend.gpu:
        from crackseg.edge.backends.cuda import CudaError, cuda_runtime

        try:
            cuda_runtime().device()
        except CudaError as exc:
            raise BenchError(f"backend {backend.name} needs an NVIDIA GPU: {exc}") from None


def _check_model(case: Case, facts: _ModelFacts) -> None:
    """The model's own precision, size multiple and (engines) shape profile allow this case."""
    height, width = case.size
    if facts.spec is not None and (height % facts.spec.size_multiple or width % facts.spec.size_multiple):
        raise BenchError(
            f"{case.label}: input {width}x{height} is not a multiple of the model's {facts.spec.size_multiple}"
        )
    own = facts.precision
    if own is not None and own != case.precision and (own != "fp32" or case.model.kind == "engine"):
        raise BenchError(
            f"{case.label}: {case.model.name} is an {own} model, it cannot be measured as {case.precision}"
            + ("" if case.model.kind == "engine" else " (give the FP32 ONNX file to have it converted)")
        )
    if facts.engine_profile is not None:
        from crackseg.edge.backends.trt import profile_problem

        problem = profile_problem((case.batch, 3, height, width), facts.engine_profile)
        if problem:
            raise BenchError(f"{case.label}: {problem}")


def plan(config: BenchConfig, default_model: Path | None = None) -> list[Case]:
    """Every case of the sweep, checked as far as possible without running anything.

    Args:
        config: the sweep.
        default_model: the model used when ``config.models`` is empty (the CLI passes the bundled one).

    Raises:
        BenchError: the first problem found, naming the case or option.
    """
    backends = [BACKENDS[_choose("backend", name, BACKENDS)] for name in config.backends]
    precisions = [cast(Precision, _choose("precision", name, PRECISIONS)) for name in config.precisions]
    for height, width in config.sizes:
        if height < 1 or width < 1:
            raise BenchError(f"input size {Size(height, width)} must be positive")
    if any(batch < 1 for batch in config.batches):
        raise BenchError(f"batch sizes must be at least 1, got {list(config.batches)}")
    names = list(config.models) or ([str(default_model)] if default_model is not None else [])
    if not names:
        raise BenchError("no model to benchmark: name a variant or a model file")
    models = list(dict.fromkeys(ModelRef.parse(name) for name in names))
    sizes = [Size(*size) for size in config.sizes]  # a plain (height, width) tuple works too
    combos = list(product(models, backends, precisions, sizes, config.batches))
    if not combos:
        raise BenchError("the sweep is empty: give at least one backend, precision, size and batch")
    for combo in combos:
        _check_pairing(Case(*combo))
    facts = {model: _model_facts(model) for model in models}
    cases = [Case(*combo, source_precision=facts[combo[0]].precision) for combo in combos]
    for case in cases:
        _check_packages(case, config.measure)
    for backend in dict.fromkeys(backends):
        _check_device(backend)
    for case in cases:
        _check_model(case, facts[case.model])
    return cases
