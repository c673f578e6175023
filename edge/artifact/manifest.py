"""The engine manifest: what a TensorRT engine was built from, with what, and for which machine.

A serialized engine only runs with the TensorRT version and GPU that built it, and it silently goes
stale when its ONNX file changes. The manifest, ``<engine>.json`` beside the engine, records all of
it, so a loader can refuse a stale or foreign engine with a message naming the difference *before*
handing the bytes to TensorRT (which would fail with an opaque error, or worse, run the old model).
It also carries the model spec, so the runtime needs nothing but the two files.

Pure Python on purpose: the edge runtime checks manifests on machines without torch or onnx.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.artifact.spec import ModelSpec, SpecError

__all__ = [
    "CALIBRATION_KEY",
    "MANIFEST_VERSION",
    "NO_GPU",
    "BuilderOptions",
    "EngineManifest",
    "ManifestError",
    "ManifestMismatch",
    "Profile",
    "RuntimeInfo",
    "check_manifest",
    "crackseg_version",
    "manifest_path",
    "read_manifest",
    "rebuild_command",
    "target_capability",
    "write_manifest",
]

MANIFEST_VERSION = 1
CALIBRATION_KEY = "crackseg_calibration"
"""ONNX ``metadata_props`` key under which the calibration stage records how a Q/DQ file was calibrated;
the manifest keeps its sha256, so an engine names the calibration it was built with."""

Shape = tuple[int, ...]


def crackseg_version() -> str:
    try:
        return metadata.version("crackseg")
    except metadata.PackageNotFoundError:
        return "unknown"


class ManifestError(SpecError):
    """An engine's manifest is missing or unreadable (a :class:`SpecError`: the manifest carries the engine's spec)."""


class ManifestMismatch(ManifestError):  # noqa: N818  (the name reads as the condition it reports)
    """An engine does not match this machine, its ONNX file or the requested build; ``differences`` says how."""

    def __init__(self, engine: Path, differences: list[str], hint: str = "") -> None:
        self.engine = engine
        self.differences = differences
        super().__init__(f"{engine} is stale or foreign: {'; '.join(differences)}" + (f". {hint}" if hint else ""))


@dataclass(frozen=True)
class Profile:
    """The optimization profile of the ``image`` input: NCHW shapes the engine accepts and tunes for."""

    min: Shape
    opt: Shape
    max: Shape

    def __str__(self) -> str:
        return " / ".join("x".join(map(str, shape)) for shape in (self.min, self.opt, self.max)) + " (min/opt/max)"


@dataclass(frozen=True)
class BuilderOptions:
    """Builder settings that shape the engine; the timing cache only speeds up building (recorded, not checked)."""

    workspace_mib: int
    dla_core: int | None = None
    strongly_typed: bool = False
    timing_cache: str | None = None
    rtx_targets: tuple[str, ...] = ()
    """TensorRT for RTX ahead-of-time targets (e.g. ``SM89``); empty: the GPU it was built on."""

    def differences(self, other: BuilderOptions) -> list[str]:
        """How ``other`` (requested) differs from these (built), ignoring the timing cache."""
        return [
            f"{name.replace('_', ' ')} {getattr(self, name)} -> {getattr(other, name)}"
            for name in ("workspace_mib", "dla_core", "strongly_typed")
            if getattr(self, name) != getattr(other, name)
        ]


NO_GPU = "none (ahead-of-time build)"
"""The GPU name a manifest records for a TensorRT-RTX build made without a GPU."""


@dataclass(frozen=True)
class RuntimeInfo:
    """The TensorRT and GPU an engine was built with, or that a machine offers to load it."""

    tensorrt_module: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]

    @property
    def gpu(self) -> str:
        if self.gpu_name == NO_GPU:
            return "no GPU"
        return f"{self.gpu_name} (compute capability {self.compute_capability[0]}.{self.compute_capability[1]})"


@dataclass(frozen=True)
class EngineManifest:
    """Everything needed to decide whether an engine may be loaded here, and the spec to run it with.

    Attributes:
        engine_sha256: hash of the engine file, so a manifest cannot vouch for another engine.
        onnx_sha256: hash of the ONNX file the engine was built from.
        onnx_path: that file as given to the builder (for the rebuild hint).
        precision: ``fp32``, ``fp16`` or ``int8``.
        profile: the optimization profile of the ``image`` input.
        builder: workspace, DLA core, typing mode and timing cache.
        runtime: TensorRT module and version, GPU name and compute capability at build time.
        spec: the model spec, carried unchanged from the ONNX file.
        calibration_hash: sha256 of the Q/DQ ONNX's calibration record (INT8), else ``None``.
        created: UTC build time, ISO 8601.
        crackseg_version: version of the package that built the engine.
    """

    engine_sha256: str
    onnx_sha256: str
    onnx_path: str
    precision: str
    profile: Profile
    builder: BuilderOptions
    runtime: RuntimeInfo
    spec: ModelSpec
    calibration_hash: str | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    crackseg_version: str = field(default_factory=crackseg_version)
    version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        raw = asdict(self)
        raw["spec"] = json.loads(self.spec.to_json())
        return json.dumps(raw, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EngineManifest:
        """Parses a manifest; raises ``ValueError`` (or ``SpecError``) on anything malformed."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        if raw.get("version") != MANIFEST_VERSION:
            raise ValueError(f"manifest version {raw.get('version')!r} is not supported (expected {MANIFEST_VERSION})")
        missing = sorted({f.name for f in fields(cls)} - set(raw))
        if missing:
            raise ValueError(f"missing fields {missing}")
        try:
            return cls(
                **{
                    **raw,
                    "profile": Profile(**{key: tuple(value) for key, value in raw["profile"].items()}),
                    "builder": BuilderOptions(
                        **{**raw["builder"], "rtx_targets": tuple(raw["builder"].get("rtx_targets", ()))}
                    ),
                    "runtime": RuntimeInfo(
                        **{**raw["runtime"], "compute_capability": tuple(raw["runtime"]["compute_capability"])}
                    ),
                    "spec": ModelSpec.from_json(json.dumps(raw["spec"])),
                }
            )
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"malformed field: {exc}") from exc


def manifest_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def write_manifest(manifest: EngineManifest, engine_path: str | Path) -> Path:
    """Writes the manifest beside the engine (atomically, so a crash never leaves half a manifest)."""
    path = manifest_path(engine_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(manifest.to_json() + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(engine_path: str | Path) -> EngineManifest:
    """The manifest of ``engine_path``; raises ``ManifestError`` when it is missing or unreadable."""
    path = manifest_path(engine_path)
    if not path.is_file():
        raise ManifestError(
            f"{engine_path} has no manifest ({path.name} is missing), so nothing vouches for the model, TensorRT "
            f"version or GPU it was built for: rebuild it with 'crackseg export engine --rebuild'"
        )
    try:
        return EngineManifest.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, SpecError) as exc:
        raise ManifestError(f"{path} is not a valid crackseg engine manifest: {exc}") from exc


def target_capability(target: str) -> tuple[int, int]:
    """The compute capability a TensorRT-RTX target names: ``SM89`` -> (8, 9), ``SM120`` -> (12, 0)."""
    match = re.fullmatch(r"SM(\d+)(\d)", target)
    if match is None:
        raise ValueError(f"{target!r} is not a GPU architecture name like SM89")
    return int(match[1]), int(match[2])


def check_manifest(
    manifest: EngineManifest,
    *,
    runtime: RuntimeInfo,
    onnx_path: str | Path | None = None,
    engine_sha256: str | None = None,
    precision: str | None = None,
    profile: Profile | None = None,
    builder: BuilderOptions | None = None,
    loading: bool = True,
) -> list[str]:
    """How an engine differs from what is wanted here; an empty list means it may be used.

    An engine built for the GPU it was built on must meet that GPU again. One built ahead of time for
    TensorRT-RTX targets (``SM89`` ...) may be loaded on any GPU of those compute capabilities, and its
    build machine's GPU does not matter when deciding whether to rebuild it (``loading=False``).

    Args:
        runtime: this machine's TensorRT and GPU (engines are specific to both).
        onnx_path: the ONNX file the engine should have been built from (stale if it changed since).
        engine_sha256: hash of the engine file beside the manifest (foreign if it is another engine).
        precision, profile, builder: a requested build; each is compared when given.
        loading: the engine is about to run here (``False``: a rebuild is being considered).
    """
    built = manifest.runtime
    targets = manifest.builder.rtx_targets
    differences: list[str] = []
    if engine_sha256 is not None and engine_sha256 != manifest.engine_sha256:
        differences.append("the engine file is not the one its manifest describes (it was replaced or corrupted)")
    if built.tensorrt_module != runtime.tensorrt_module:
        differences.append(f"built with {built.tensorrt_module}, this machine uses {runtime.tensorrt_module}")
    elif built.tensorrt_version != runtime.tensorrt_version:
        differences.append(f"built with TensorRT {built.tensorrt_version}, this machine has {runtime.tensorrt_version}")
    if targets and loading:
        if runtime.compute_capability not in {target_capability(target) for target in targets}:
            differences.append(f"built ahead of time for {', '.join(targets)}, this machine has {runtime.gpu}")
    elif not targets and (built.gpu_name, built.compute_capability) != (runtime.gpu_name, runtime.compute_capability):
        differences.append(f"built for {built.gpu}, this machine has {runtime.gpu}")
    if onnx_path is not None:
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            differences.append(f"its ONNX file {onnx_path} is missing")
        elif sha256_file(onnx_path) != manifest.onnx_sha256:
            differences.append(f"{onnx_path} changed since the engine was built")
    if precision is not None and precision != manifest.precision:
        differences.append(f"precision {manifest.precision} -> {precision}")
    if profile is not None and profile != manifest.profile:
        differences.append(f"optimization profile {manifest.profile} -> {profile}")
    if builder is not None:
        differences.extend(f"builder option {change}" for change in manifest.builder.differences(builder))
    return differences


def rebuild_command(manifest: EngineManifest, engine_path: str | Path) -> str:
    """The ``crackseg export engine`` command that builds this engine again, on this machine, as recorded.

    The typing mode is left to the builder: it may have to differ on another TensorRT version.
    """
    parts = [f"crackseg export engine --onnx {manifest.onnx_path} --precision {manifest.precision}"]
    profile = manifest.profile
    if not profile.min == profile.opt == profile.max:
        parts += [
            f"--{label}-shape {'x'.join(map(str, shape))}"
            for label, shape in (("min", profile.min), ("opt", profile.opt), ("max", profile.max))
        ]
    parts.append(f"--workspace-mib {manifest.builder.workspace_mib}")
    if manifest.builder.dla_core is not None:
        parts.append(f"--dla-core {manifest.builder.dla_core}")
    if manifest.builder.timing_cache:
        parts.append(f"--timing-cache {manifest.builder.timing_cache}")
    return " ".join([*parts, f"--out {engine_path} --rebuild"])
