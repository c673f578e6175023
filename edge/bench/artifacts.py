"""The model file each benchmark case runs, made on the fly where needed, and the runner that loads it.

What a case runs:

* a file: that file (an FP32 ONNX file asked for at FP16 or INT8 is converted first, as below);
* replay: the ONNX file, run by ONNX Runtime on the CPU to record the maps the replay backend returns;
* a variant name: a random-initialized network (seed 0) exported to ONNX with dynamic shapes, traced at
  the case's input size (torch is needed here and only here); the PyTorch backends run it in memory.
  Speed does not depend on the weights, so a variant is measured before it is trained;
* FP16: the FP32 ONNX converted by :func:`crackseg.export.onnx.convert_to_fp16`;
* INT8: a Q/DQ ONNX made by :func:`crackseg.calib.qdq.quantize_qdq`, calibrated on a few synthetic crack
  frames at the case's input size: right for speed, not for accuracy (that needs ``crackseg calib``);
* TensorRT: an engine built for the case's exact input shape, from the ONNX file of its precision
  (FP16 and Q/DQ INT8 ONNX files build strongly typed, on TensorRT 10, 11 and TensorRT-RTX alike).

Everything made goes to one work directory, named after what it was made from (the source file's
hash, the precision, the size), so a ``--cache-dir`` is reused safely across runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.size import Size
from crackseg.edge.backends.base import Runner
from crackseg.edge.bench.config import REPLAY, BenchError, Case
from crackseg.edge.runtime.wire import model_hash

__all__ = ["Artifact", "ArtifactMaker", "running"]

_SEED = 0
_CALIBRATION_SEED = 1
"""Calibration frames are drawn apart from the frames the end-to-end level replays."""


@dataclass(frozen=True)
class Artifact:
    """What one case runs.

    Attributes:
        path: the model file; ``None`` for a variant the PyTorch backend builds in memory.
        origin: how it came to be, for the report.
        model_hash: the 16 bytes every published message carries.
    """

    path: Path | None
    origin: str
    model_hash: bytes


def _short_hash(path: Path) -> str:
    from crackseg.edge.artifact.hashing import sha256_file

    return sha256_file(path)[:12]


def _variant_hash(name: str) -> bytes:
    return hashlib.sha256(f"{name} random-init seed {_SEED}".encode()).digest()[:16]


class ArtifactMaker:
    """Makes (or finds, in ``work_dir``) the model file of each case.

    Args:
        work_dir: where made files go; existing files of the same name are reused.
        calib_frames: synthetic frames for INT8 calibration.
    """

    def __init__(self, work_dir: Path, calib_frames: int) -> None:
        self.work_dir = work_dir
        self.calib_frames = calib_frames
        work_dir.mkdir(parents=True, exist_ok=True)

    def prepare(self, case: Case) -> Artifact:
        model = case.model
        if case.backend.runtime == "pytorch":
            if model.path is None:
                return Artifact(None, f"{model.name}, random init (seed {_SEED}), in memory", _variant_hash(model.name))
            return Artifact(model.path, "checkpoint file", model_hash(model.path))
        if model.kind == "engine":
            assert model.path is not None
            return Artifact(model.path, "engine file", model_hash(model.path))
        if case.backend.runtime == REPLAY:
            assert model.path is not None
            return Artifact(
                model.path, "file, its maps recorded by ONNX Runtime (CPU) and replayed", model_hash(model.path)
            )
        if model.path is None:
            onnx, origin = self._export(model.name, case.size), f"{model.name}, random init (seed {_SEED}), exported"
        else:
            onnx, origin = model.path, "file"
            if case.source_precision is None and case.precision != "fp32":
                origin = f"file, taken as {case.precision} (onnx is not installed to check)"
        if case.converts:
            onnx = self._fp16(onnx) if case.precision == "fp16" else self._int8(onnx, case.size)
            origin += (
                ", converted to FP16"
                if case.precision == "fp16"
                else f", quantized to Q/DQ INT8 ({self.calib_frames} synthetic calibration frames)"
            )
        if case.backend.runtime == "tensorrt":
            engine = self._engine(onnx, case)
            return Artifact(engine, origin + ", engine built", model_hash(engine))
        return Artifact(onnx, origin, model_hash(onnx))

    def _export(self, variant: str, size: Size) -> Path:
        path = self.work_dir / f"{variant}-random-{size}.onnx"
        if not path.is_file():
            import torch

            from crackseg.export.onnx import export_onnx
            from crackseg.train.models import create_model, create_spec

            torch.manual_seed(_SEED)
            network = create_model(variant)
            export_onnx(network, create_spec(variant, network), path, input_size=size, dynamic=True)
        return path

    def _fp16(self, source: Path) -> Path:
        path = self.work_dir / f"{source.stem}-{_short_hash(source)}.fp16.onnx"
        if not path.is_file():
            import onnx

            from crackseg.export.onnx import convert_to_fp16, read_onnx

            onnx.save(convert_to_fp16(read_onnx(source)[0]), str(path))
        return path

    def _int8(self, source: Path, size: Size) -> Path:
        path = self.work_dir / f"{source.stem}-{_short_hash(source)}.int8-{size}.onnx"
        if not path.is_file():
            import onnx

            from crackseg.calib.qdq import quantize_qdq
            from crackseg.edge.backends.preprocess import to_network_input
            from crackseg.edge.runtime.sources.synthetic import CrackSynth
            from crackseg.export.onnx import read_onnx

            graph, spec = read_onnx(source)
            synth = CrackSynth(width=size[1], height=size[0], seed=_CALIBRATION_SEED)
            feeds = ({"image": to_network_input(synth.render(i)[0], spec)} for i in range(self.calib_frames))
            record = {"data": f"{self.calib_frames} synthetic crack frames, seed {_CALIBRATION_SEED} (speed only)"}
            model = quantize_qdq(graph, spec, feeds, calibration=record, total=self.calib_frames, progress=False)
            onnx.save(model, str(path))
        return path

    def _engine(self, onnx: Path, case: Case) -> Path:
        from crackseg.edge.artifact.manifest import Profile
        from crackseg.export.engine import EngineFromOnnx, SaveEngine

        height, width = case.size
        path = self.work_dir / f"{onnx.stem}-{_short_hash(onnx)}.b{case.batch}-{width}x{height}.{case.precision}.engine"
        if not path.is_file():
            shape = (case.batch, 3, height, width)
            loader = EngineFromOnnx(
                onnx,
                case.precision,
                profile=Profile(shape, shape, shape),
                timing_cache=self.work_dir / "tensorrt.timing-cache",
                progress=False,
            )
            SaveEngine(loader, path)()
        return path


def _open(case: Case, artifact: Artifact, threads: int | None, replay_ms: float) -> Runner:
    backend = case.backend
    if backend.runtime == REPLAY:
        from crackseg.edge.backends.onnxrt import OnnxRuntimeRunner
        from crackseg.edge.runtime.replay import ReplayRunner

        assert artifact.path is not None
        recorder = OnnxRuntimeRunner(artifact.path, providers=("CPUExecutionProvider",), threads=threads)
        return ReplayRunner(recorder, replay_ms / 1e3)
    if backend.runtime == "onnxruntime":
        from crackseg.edge.backends.onnxrt import OnnxRuntimeRunner

        assert artifact.path is not None and backend.provider is not None
        return OnnxRuntimeRunner(artifact.path, providers=(backend.provider,), threads=threads)
    if backend.runtime == "tensorrt":
        from crackseg.edge.backends.trt import TensorRTRunner

        assert artifact.path is not None
        return TensorRTRunner(artifact.path)
    from crackseg.edge.backends.pytorch import TorchRunner

    options: dict[str, Any] = {
        "device": backend.device,
        "half": case.precision == "fp16",
        **dict(backend.runner_options),
    }
    if artifact.path is not None:
        return TorchRunner(artifact.path, **options)
    import torch

    from crackseg.train.models import create_model, create_spec

    torch.manual_seed(_SEED)
    network = create_model(case.model.name)
    return TorchRunner((network, create_spec(case.model.name, network)), **options)


@contextmanager
def running(case: Case, artifact: Artifact, threads: int | None = None, replay_ms: float = 5.0) -> Iterator[Runner]:
    """An active runner for the case; an ONNX Runtime session that fell back to another provider is refused."""
    with _open(case, artifact, threads, replay_ms) as runner:
        provider = case.backend.provider
        used = getattr(runner, "providers", None)
        if provider is not None and (not used or used[0] != provider):
            raise BenchError(f"{case.label}: ONNX Runtime did not use {provider} (it fell back to {used})")
        yield runner
