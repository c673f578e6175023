"""Runs a planned sweep: make every case's model, then measure each case raw and end to end.

Every model is made (exported, converted, quantized, built) before the first measurement, so a failing
build stops the run early. Then, per case and on the same warm runner: raw inference first (its
throughput sets the load point), then the pipeline, the pipeline with the inspection outputs on (recording,
overlay, pose; with ``--inspection``), the naive loop and the pipeline under load, one right after the other,
so that the figures compared in the ratios were measured side by side. A replay case first records the maps
it replays: of the raw level's input, then of every pooled frame.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from crackseg.edge.artifact.size import Size
from crackseg.edge.bench.artifacts import Artifact, ArtifactMaker, running
from crackseg.edge.bench.config import BenchConfig, Case, MeasureConfig
from crackseg.edge.bench.endtoend import FramePool, Wiring, run_inspection, run_naive, run_pipeline
from crackseg.edge.bench.machine import machine_facts
from crackseg.edge.bench.raw import measure_raw, random_batch
from crackseg.edge.bench.results import (
    SCHEMA_VERSION,
    TARGETS,
    BenchReport,
    CaseInfo,
    CaseResult,
    EndToEndResult,
    InspectionResult,
    ratios,
)
from crackseg.edge.runtime.replay import ReplayRunner
from crackseg.edge.runtime.sinks.overlay_output import DEFAULT_FPS as OVERLAY_FPS
from crackseg.edge.runtime.sinks.record import THUMBNAIL_INTERVAL_S

__all__ = ["run_bench"]

_FEW_FRAMES = 20
"""Fewer published frames than this make tail percentiles rough; the report says so."""


def _end_to_end(case: Case, measure: MeasureConfig) -> bool:
    return measure.end_to_end and case.batch == 1


def _end_to_end_runs(case: Case, measure: MeasureConfig) -> int:
    """End-to-end runs of one case: pipeline, naive and load, plus inspection when asked for."""
    return 3 + int(measure.inspection) if _end_to_end(case, measure) else 0


def _settings(config: BenchConfig, work_dir: Path) -> dict[str, Any]:
    return {
        "models": list(config.models),
        "backends": list(config.backends),
        "precisions": list(config.precisions),
        "sizes": [str(Size(*size)) for size in config.sizes],
        "batches": list(config.batches),
        **asdict(config.measure),
        "cache_dir": str(work_dir) if config.cache_dir is not None else None,
    }


def _notes(case: Case, measure: MeasureConfig, runs: Sequence[EndToEndResult]) -> list[str]:
    notes = []
    if case.model.kind == "variant" and runs:
        notes.append(
            "random-init weights: the masks are noise, not cracks, so postprocess and encode cost more than with "
            "a trained model"
        )
    if measure.stats == "fast" and runs:
        notes.append("fast statistics: skeleton length and width estimated (edge/runtime/stats.py gives their error)")
    if case.batch > 1 and measure.end_to_end:
        notes.append("end to end is measured at batch 1 only: the pipeline infers one frame per call")
    for run in runs:
        if run.published < _FEW_FRAMES:
            notes.append(f"{run.mode}: only {run.published} frames, tail percentiles are rough (raise --e2e-duration)")
        if run.mode == "load" and run.dropped:
            notes.append(f"load: {run.dropped} of {run.offered} frames dropped, the pipeline fell behind the source")
        if run.subscriber.lost:
            notes.append(f"{run.mode}: the subscriber missed {run.subscriber.lost} of {run.published} messages")
        if run.inspection is not None:
            notes.append(_inspection_note(run.published, run.inspection))
    return notes


def _inspection_note(published: int, outputs: InspectionResult) -> str:
    """What the overlay, the pose tagging and the recording did in the inspection run, drops included."""
    samples = sum(outputs.pose_samples.values())
    errors = f", {outputs.overlay_errors} not writable" if outputs.overlay_errors else ""
    missing = {"dropped": outputs.record_dropped, "lost": outputs.record_lost, "write errors": outputs.record_errors}
    record_missing = "".join(f", {count} {what}" for what, count in missing.items() if count)
    return (
        f"inspection: overlay video {outputs.overlay_written} frames written ({outputs.video_frames} decoded back), "
        f"{outputs.overlay_skipped} of {published} skipped by its {OVERLAY_FPS:g} fps pacing, "
        f"{outputs.overlay_dropped} dropped from it{errors}; {outputs.frames_with_pose} of "
        f"{published} frames tagged with position and attitude ({outputs.frames_with_stale_pose} stale) from "
        f"{samples} MAVLink samples; recording {outputs.recorded} of {published} frames{record_missing}, "
        f"{outputs.thumbnails_written} camera thumbnails for {outputs.recorded_with_cracks} frames with cracks "
        f"(at most one every {THUMBNAIL_INTERVAL_S * 1000:g} ms of capture; {outputs.thumbnails_skipped} skipped for "
        "a full backlog)"
    )


def _measure(
    case: Case, artifact: Artifact, measure: MeasureConfig, pools: dict[Size, FramePool], bar: tqdm[Any]
) -> CaseResult:
    def step(what: str) -> None:
        bar.set_postfix_str(f"{case.label}: {what}", refresh=True)

    def done() -> None:
        bar.update()

    step("raw inference")
    runs: dict[str, EndToEndResult] = {}
    shape = (case.batch, 3, *case.size)
    with running(case, artifact, measure.threads, measure.replay_ms) as runner:
        if isinstance(runner, ReplayRunner):
            step("recording maps for replay")
            runner.record(random_batch(shape))
        raw, raw_s = measure_raw(runner, shape, measure)
        done()
        samples = {"raw": [s * 1e3 for s in raw_s]}
        if _end_to_end(case, measure):
            step("loading frames")
            if case.size not in pools:
                pools[case.size] = FramePool.load(measure.source, case.size, measure.frame_pool)
            wiring = Wiring(
                runner,
                pools[case.size],
                case.size,
                artifact.model_hash,
                measure.encoding,
                measure.postprocess_workers,
                measure.stats,
                artifact.path.name if artifact.path is not None else case.model.name,
            )
            if isinstance(runner, ReplayRunner):
                step("recording maps for replay")
                runner.record_frames(wiring.pool.frames, wiring.geometry)
            step("pipeline")
            runs["pipeline"], pipeline_s = run_pipeline(wiring, measure.e2e_duration_s)
            samples["pipeline"] = [s * 1e3 for s in pipeline_s]
            done()
            if measure.inspection:
                step("pipeline with recording, overlay and pose")
                runs["inspection"], inspection_s = run_inspection(wiring, measure.e2e_duration_s)
                samples["inspection"] = [s * 1e3 for s in inspection_s]
                done()
            step("naive loop")
            runs["naive"], _ = run_naive(wiring, measure.e2e_duration_s)
            done()
            rate = measure.load * raw.throughput_fps
            step(f"pipeline at {rate:.1f} fps")
            runs["load"], load_s = run_pipeline(wiring, measure.e2e_duration_s, rate)
            samples["load"] = [s * 1e3 for s in load_s]
            done()
        providers = list(getattr(runner, "providers", []))
        note = runner.measurement_note
    info = CaseInfo(
        model=case.model.name,
        model_kind=case.model.kind,
        artifact=str(artifact.path) if artifact.path is not None else None,
        origin=artifact.origin,
        backend=case.backend.name,
        runtime=case.backend.runtime,
        providers=providers,
        precision=case.precision,
        input_height=case.size[0],
        input_width=case.size[1],
        batch=case.batch,
        replay_ms=measure.replay_ms if isinstance(runner, ReplayRunner) else None,
    )
    pipeline, load, naive, inspection = (runs.get(mode) for mode in ("pipeline", "load", "naive", "inspection"))
    notes = ([note] if note else []) + _notes(case, measure, list(runs.values()))
    figures = ratios(raw, pipeline, load, naive, inspection)
    return CaseResult(info, raw, pipeline, load, naive, inspection, figures, notes, samples)


def run_bench(config: BenchConfig, cases: Sequence[Case], progress: bool = True) -> BenchReport:
    """Measures ``cases`` (from :func:`crackseg.edge.bench.config.plan`) and returns the report.

    Args:
        config: the sweep the cases came from (its measurement settings and cache directory).
        cases: the checked cases.
        progress: show a progress bar on stderr.
    """
    machine = machine_facts()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    measure = config.measure
    with ExitStack() as stack:
        if config.cache_dir is not None:
            work_dir = config.cache_dir
        else:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crackseg-bench-")))
        maker = ArtifactMaker(work_dir, measure.calib_frames)
        steps = sum(2 + _end_to_end_runs(case, measure) for case in cases)
        bar = stack.enter_context(tqdm(total=steps, desc="crackseg bench", unit="step", disable=not progress))
        artifacts = []
        for case in cases:
            bar.set_postfix_str(f"{case.label}: preparing the model", refresh=True)
            artifacts.append(maker.prepare(case))
            bar.update()
        pools: dict[Size, FramePool] = {}
        results = [
            _measure(case, artifact, measure, pools, bar) for case, artifact in zip(cases, artifacts, strict=True)
        ]
    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = list(os.getloadavg())
    targets = {name: f"{rule} {limit}" for name, (rule, limit) in TARGETS.items()}
    return BenchReport(SCHEMA_VERSION, created, _settings(config, work_dir), machine, targets, results)
