"""``crackseg bench``: figures computed right, the JSON schema, a tiny sweep end to end, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.bench.config import BenchConfig, BenchError, MeasureConfig, ModelRef, plan
from crackseg.edge.bench.inspection import HFOV_DEG, run_config
from crackseg.edge.bench.results import (
    PIPELINE_STAGES,
    STAGES,
    EndToEndResult,
    LatencyStats,
    RawResult,
    SubscriberResult,
    ratios,
    stage_capacity,
)
from crackseg.edge.cli.main import main
from crackseg.edge.models import DEFAULT_MODEL_NAME
from crackseg.edge.runtime.assembly.build import run_recorder
from crackseg.edge.runtime.assembly.config import PoseConfig, RunConfig
from crackseg.edge.runtime.inventory.measure import MIN_CRACK_PIXELS

LATENCY_KEYS = {"count", "mean_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"}
CONFIG_KEYS = {"model", "model_kind", "artifact", "origin", "backend", "runtime", "providers", "precision",
               "input_height", "input_width", "batch", "replay_ms"}  # fmt: skip
RUN_KEYS = {"mode", "source_fps", "elapsed_s", "offered", "published", "dropped", "drop_rate", "throughput_fps",
            "capture_to_publish", "stages", "subscriber", "postprocess_workers", "capacity_fps",
            "bottleneck", "inspection"}  # fmt: skip
SETTINGS_KEYS = {"models", "backends", "precisions", "sizes", "batches", "warmup_s", "iterations", "duration_s",
                 "min_iterations", "end_to_end", "inspection", "e2e_duration_s", "load", "source", "frame_pool",
                 "encoding", "threads", "calib_frames", "cache_dir", "replay_ms", "postprocess_workers",
                 "stats"}  # fmt: skip
RATIOS = {"pipeline_over_raw", "load_p50_over_raw_p50", "pipeline_over_naive", "inspection_over_pipeline"}
INSPECTION_KEYS = {"overlay_written", "overlay_skipped", "overlay_dropped", "overlay_errors", "video_frames",
                   "pose_samples", "frames_with_pose", "frames_with_stale_pose", "recorded", "recorded_with_cracks",
                   "thumbnails_written", "thumbnails_skipped", "record_dropped", "record_lost",
                   "record_errors"}  # fmt: skip


def _stats_ms(*values: float) -> LatencyStats:
    stats = LatencyStats.of_seconds(np.asarray(values) / 1e3)
    assert stats is not None
    return stats


# --- the figures --------------------------------------------------------------------------------------------


def test_latency_stats_interpolate_percentiles_linearly() -> None:
    # Type 7 on 1, 2, 3, 4 ms: rank h = 3p; p90 -> h = 2.7 -> 3 + 0.7 = 3.7 ms; p95 -> 3.85; p99 -> 3.97.
    stats = LatencyStats.of_seconds([0.004, 0.001, 0.003, 0.002])
    assert stats is not None
    assert stats.count == 4
    assert (stats.min_ms, stats.mean_ms, stats.max_ms) == pytest.approx((1.0, 2.5, 4.0))
    assert (stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms) == pytest.approx((2.5, 3.7, 3.85, 3.97))


def test_latency_stats_of_1_to_101_ms_hit_the_ranks_exactly() -> None:
    stats = _stats_ms(*range(101, 0, -1))  # h = 100p lands on whole ranks: p90 is the 91st value
    assert (stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms) == pytest.approx((51.0, 91.0, 96.0, 100.0))


def test_latency_stats_of_no_samples_is_none_not_nan() -> None:
    assert LatencyStats.of_seconds([]) is None


def _run(fps: float, p50_ms: float) -> EndToEndResult:
    latency = _stats_ms(p50_ms)
    stages: dict[str, LatencyStats | None] = dict.fromkeys(STAGES, latency)
    return EndToEndResult("pipeline", None, 1.0, 10, 10, 0, 0.0, fps, latency, stages, SubscriberResult(10, 0, latency))


def test_ratios_are_measured_against_their_targets() -> None:
    raw = RawResult(1, 3, 50, 5.0, 10.0, _stats_ms(20.0))
    figures = ratios(raw, _run(9.6, 40.0), load=_run(8.0, 27.0), naive=_run(8.0, 30.0), inspection=_run(9.0, 41.0))
    assert figures["pipeline_over_raw"].value == pytest.approx(0.96)  # 9.6 / 10
    assert figures["pipeline_over_raw"].met is True  # >= 0.95
    assert figures["load_p50_over_raw_p50"].value == pytest.approx(1.35)  # 27 / 20
    assert figures["load_p50_over_raw_p50"].met is False  # <= 1.3
    assert figures["pipeline_over_naive"].value == pytest.approx(1.2)  # 9.6 / 8
    assert figures["pipeline_over_naive"].met is True
    assert figures["inspection_over_pipeline"].value == pytest.approx(0.9375)  # 9.0 / 9.6
    assert figures["inspection_over_pipeline"].met is False  # >= 0.95
    assert ratios(raw, _run(9.6, 40.0), None, None)["inspection_over_pipeline"].value is None  # not asked for
    unmeasured = ratios(raw, None, None, None)
    assert all(ratio.value is None and ratio.met is None for ratio in unmeasured.values())


def test_stage_capacity_is_threads_over_mean_time_and_names_the_slowest_stage() -> None:
    stages: dict[str, LatencyStats | None] = {
        "capture": _stats_ms(0.5),
        "preprocess": _stats_ms(2.0, 4.0),  # mean 3 ms
        "infer": _stats_ms(10.0),
        "postprocess": _stats_ms(20.0, 30.0),  # mean 25 ms, on 4 workers
        "encode": _stats_ms(1.0),
        "publish": _stats_ms(0.25),  # the publish thread: encode + hand-off, 1.25 ms
    }
    capacity, bottleneck = stage_capacity(stages, postprocess_workers=4)
    assert capacity == pytest.approx(
        {"capture": 2000.0, "preprocess": 1000 / 3, "infer": 100.0, "postprocess": 160.0, "publish": 800.0}
    )
    assert bottleneck == "infer"
    capacity, bottleneck = stage_capacity(stages, postprocess_workers=1)
    assert capacity["postprocess"] == pytest.approx(40.0) and bottleneck == "postprocess"
    capacity, bottleneck = stage_capacity({**stages, "encode": None}, postprocess_workers=4)
    assert capacity["publish"] is None and bottleneck == "infer"


# --- the sources of the end-to-end level ---------------------------------------------------------------------


def test_clocked_source_captures_on_schedule_and_drops_what_a_late_reader_missed() -> None:
    pytest.importorskip("cv2")
    from crackseg.edge.bench.endtoend import ClockedSource, FramePool, SampleLog
    from crackseg.edge.runtime.sources.uri import parse_uri

    pool = FramePool(parse_uri("synthetic://"), [np.zeros((8, 8, 3), np.uint8)])
    with ClockedSource(pool, SampleLog(), fps=100.0) as source:
        first = source.read(1.0)
        time.sleep(0.12)  # frames 1..11 or more are due meanwhile: the reader gets the newest
        late = source.read(1.0)
        assert first is not None and late is not None
        index = (late.capture_ns - first.capture_ns) / 10_000_000  # frame k is stamped exactly k * 10 ms after 0
        assert index == round(index) >= 12
        assert source.stats.dropped_stale == index - 1
        assert late.capture_ns <= time.time_ns()


# --- the sweep and its errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [("scnet-t", "variant"), ("m.onnx", "onnx"), ("m.engine", "engine"), ("m.safetensors", "checkpoint")],
)
def test_models_are_variants_or_files_by_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if kind != "variant":
        Path(text).write_bytes(b"")
    assert ModelRef.parse(text).kind == kind


@pytest.mark.parametrize("text", ["missing.onnx", "weights.pt", "dir/name"])
def test_a_model_that_is_neither_variant_nor_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError):
        ModelRef.parse(text)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--backend", "ort-gpu"], "unknown backend 'ort-gpu' (did you mean 'ort-cpu'?)"),
        (["--backend", "torch-cpu", "--precision", "int8"], "backend torch-cpu does not run int8"),
        (["--backend", "ort-cuda", "--precision", "fp32", "int8"], "backend ort-cuda does not run int8"),
        (["--precision", "fp8"], "unknown precision 'fp8'"),
        (["--load", "1.5"], "load must be in (0, 1]"),
        (["--batch", "0"], "batch sizes must be at least 1"),
        (["--inspection", "--no-e2e"], "the inspection run is an end-to-end run: drop --no-e2e"),
    ],
)
def test_bad_arguments_fail_before_anything_runs_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")  # never read: every check above comes before the model is opened
    assert main(["bench", "--model", str(model), *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crackseg bench: error: ") and message in err
    assert err.count("\n") == 1


def test_an_unknown_statistics_mode_is_a_bench_error() -> None:
    with pytest.raises(BenchError, match="statistics mode must be one of exact, fast, got 'approx'"):
        MeasureConfig(stats="approx")  # type: ignore[arg-type]


def test_an_onnx_file_cannot_run_on_pytorch(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    with pytest.raises(BenchError, match=r"torch-cpu cannot run m\.onnx \(a onnx file\)"):
        plan(BenchConfig(models=(str(model),), backends=("torch-cpu",)))


def test_the_sweep_is_the_product_of_its_lists(scnet_t_onnx: Path) -> None:
    config = BenchConfig(
        models=(str(scnet_t_onnx),), precisions=("fp32", "int8"), sizes=((64, 64), (64, 96)), batches=(1, 2)
    )
    cases = plan(config)
    assert len(cases) == 2 * 2 * 2
    labels = [
        "scnet-t.onnx ort-cpu fp32 64x64 b1",
        "scnet-t.onnx ort-cpu fp32 64x64 b2",
        "scnet-t.onnx ort-cpu fp32 96x64 b1",
    ]
    assert [case.label for case in cases[:3]] == labels
    assert all(case.source_precision == "fp32" for case in cases)
    assert [case.converts for case in cases] == [False] * 4 + [True] * 4


def test_sizes_must_fit_the_models_size_multiple(scnet_t_onnx: Path) -> None:
    with pytest.raises(BenchError, match="input 70x64 is not a multiple of the model's 32"):
        plan(BenchConfig(models=(str(scnet_t_onnx),), sizes=((64, 70),)))


# --- models made on the fly ----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_fp16_and_int8_models_are_made_from_the_fp32_onnx(scnet_t_onnx: Path, tmp_path: Path, precision: str) -> None:
    pytest.importorskip("cv2")
    onnx = pytest.importorskip("onnx")
    from crackseg.edge.bench.artifacts import ArtifactMaker, running
    from crackseg.export.onnx import onnx_precision

    (case,) = plan(BenchConfig(models=(str(scnet_t_onnx),), precisions=(precision,), sizes=((64, 64),)))
    artifact = ArtifactMaker(tmp_path, calib_frames=2).prepare(case)
    assert artifact.path is not None and artifact.path.parent == tmp_path
    assert onnx_precision(onnx.load(str(artifact.path))) == precision
    assert ("converted to FP16" if precision == "fp16" else "quantized to Q/DQ INT8") in artifact.origin
    with running(case, artifact) as runner:
        assert runner.infer(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)


# --- a tiny sweep, end to end, without torch -----------------------------------------------------------------


def _assert_latency(value: Any) -> None:
    assert set(value) == LATENCY_KEYS
    assert isinstance(value["count"], int) and value["count"] >= 1
    assert (
        value["min_ms"] <= value["p50_ms"] <= value["p90_ms"] <= value["p95_ms"] <= value["p99_ms"] <= value["max_ms"]
    )


def _assert_run(run: Any, mode: str) -> None:
    assert set(run) == RUN_KEYS and run["mode"] == mode
    assert isinstance(run["published"], int) and run["published"] >= 1
    assert run["offered"] == run["published"] + run["dropped"]
    assert run["throughput_fps"] == pytest.approx(run["published"] / run["elapsed_s"])
    _assert_latency(run["capture_to_publish"])
    assert list(run["stages"]) == list(STAGES)
    for stage in STAGES:
        _assert_latency(run["stages"][stage])
    assert list(run["capacity_fps"]) == list(PIPELINE_STAGES)
    postprocess = run["stages"]["postprocess"]["mean_ms"]
    assert run["capacity_fps"]["postprocess"] == pytest.approx(1e3 * run["postprocess_workers"] / postprocess)
    assert run["bottleneck"] == min(run["capacity_fps"], key=run["capacity_fps"].get)
    subscriber = run["subscriber"]
    assert set(subscriber) == {"received", "lost", "capture_to_receive"}
    assert subscriber["received"] + subscriber["lost"] == run["published"] and subscriber["received"] >= 1
    _assert_latency(subscriber["capture_to_receive"])


def test_a_tiny_sweep_runs_end_to_end_without_torch_and_writes_json_markdown_and_plot(
    scnet_t_onnx: Path, tmp_path: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    pytest.importorskip("matplotlib")
    out = {name: tmp_path / f"bench.{name}" for name in ("json", "md", "png")}
    command = crackseg_command("bench", "--model", str(scnet_t_onnx), "--size", "64x64", "--batch", "1", "2",
                               "--warmup", "0", "--iterations", "5", "--e2e-duration", "1", "--frame-pool", "4",
                               "--postprocess-workers", "2", "--json", str(out["json"]), "--markdown", str(out["md"]),
                               "--plot", str(out["png"]), "--no-progress")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    report = json.loads(out["json"].read_text())
    assert report["schema_version"] == 1
    assert set(report) == {"schema_version", "created", "settings", "machine", "targets", "results"}
    assert set(report["settings"]) == SETTINGS_KEYS and report["settings"]["sizes"] == ["64x64"]
    assert report["settings"]["stats"] == "exact"  # the default
    assert report["targets"] == {"pipeline_over_raw": ">= 0.95", "load_p50_over_raw_p50": "<= 1.3",
                                 "pipeline_over_naive": "> 1.0", "inspection_over_pipeline": ">= 0.95"}  # fmt: skip
    machine = report["machine"]
    assert {"platform", "python", "cpu", "memory_bytes", "load_average", "gpus", "jetson", "libraries"} <= set(machine)
    assert machine["libraries"]["onnxruntime"] and isinstance(machine["cpu"]["logical_cores"], int)

    single, batched = report["results"]
    for result, batch in ((single, 1), (batched, 2)):
        assert set(result) == {"config", "raw", "pipeline", "naive", "load", "inspection", "ratios", "notes"}
        config = result["config"]
        assert set(config) == CONFIG_KEYS and config["batch"] == batch
        assert (config["backend"], config["precision"], config["providers"]) == (
            "ort-cpu",
            "fp32",
            ["CPUExecutionProvider"],
        )
        raw = result["raw"]
        assert set(raw) == {"batch", "warmup_iterations", "iterations", "elapsed_s", "throughput_fps", "latency"}
        assert raw["iterations"] == 5 and raw["warmup_iterations"] >= 1
        assert raw["throughput_fps"] == pytest.approx(batch * 5 / raw["elapsed_s"])
        _assert_latency(raw["latency"])
        assert set(result["ratios"]) == RATIOS
        assert all(set(ratio) == {"value", "target", "met"} for ratio in result["ratios"].values())

    for mode in ("pipeline", "naive", "load"):
        _assert_run(single[mode], mode)
        assert single[mode]["inspection"] is None
    assert single["inspection"] is None and single["ratios"]["inspection_over_pipeline"]["value"] is None
    assert single["pipeline"]["postprocess_workers"] == single["load"]["postprocess_workers"] == 2
    assert single["naive"]["postprocess_workers"] == 1
    assert single["pipeline"]["dropped"] == 0 and single["naive"]["dropped"] == 0  # playback: nothing is lost
    assert single["load"]["source_fps"] == pytest.approx(0.8 * single["raw"]["throughput_fps"])
    assert single["ratios"]["pipeline_over_naive"]["value"] == pytest.approx(
        single["pipeline"]["throughput_fps"] / single["naive"]["throughput_fps"]
    )
    assert batched["pipeline"] is None and batched["load"] is None and batched["naive"] is None
    assert batched["ratios"]["pipeline_over_raw"]["value"] is None
    assert any("batch 1 only" in note for note in batched["notes"])

    table = out["md"].read_text()
    assert table in done.stdout  # the printed table is the written one
    assert (
        "| scnet-t.onnx | ort-cpu | fp32 | 64x64 | 1 |" in table
        and "| scnet-t.onnx | ort-cpu | fp32 | 64x64 | 2 |" in table
    )
    assert "Capacity: frames per second each stage could sustain alone" in table
    assert out["png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_replay_sweep_measures_the_runtime_at_the_set_latency_and_says_so_and_its_statistics_mode(
    tmp_path: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    out = tmp_path / "replay.json"
    command = crackseg_command("bench", "--backend", "replay", "--replay-ms", "20", "--size", "64x64", "--warmup", "0",
                               "--iterations", "5", "--e2e-duration", "1", "--frame-pool", "3", "--json", str(out),
                               "--stats", "fast", "--no-progress")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["stats"] == "fast"
    (result,) = report["results"]
    assert (result["config"]["backend"], result["config"]["runtime"], result["config"]["replay_ms"]) == (
        "replay",
        "replay",
        20.0,
    )
    assert result["raw"]["latency"]["min_ms"] >= 20.0 and result["raw"]["throughput_fps"] <= 50.0
    assert result["pipeline"]["stages"]["infer"]["min_ms"] >= 20.0
    assert result["notes"][0].startswith("replay measurement: onnxruntime probability maps recorded beforehand")
    assert result["inspection"] is None and result["ratios"]["inspection_over_pipeline"]["value"] is None
    assert " inspection |" not in done.stdout  # without --inspection: no such run
    assert f"| {DEFAULT_MODEL_NAME}.onnx | replay 20 ms | fp32 | 64x64 | 1 |" in done.stdout
    assert "replay measurement" in done.stdout
    assert "fast statistics: skeleton length and width estimated" in done.stdout


def test_inspection_measures_the_pipeline_again_with_recording_overlay_video_and_mavlink_pose(
    tmp_path: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    pytest.importorskip("pymavlink")
    out = tmp_path / "inspection.json"
    command = crackseg_command("bench", "--backend", "replay", "--replay-ms", "20", "--size", "64x64", "--warmup", "0",
                               "--iterations", "5", "--e2e-duration", "1.5", "--frame-pool", "3", "--inspection",
                               "--json", str(out), "--no-progress")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())["results"]
    run, pipeline = result["inspection"], result["pipeline"]
    _assert_run(run, "inspection")
    assert pipeline["inspection"] is None and run["dropped"] == 0  # the overlay never costs a published mask
    outputs = run["inspection"]
    assert set(outputs) == INSPECTION_KEYS
    assert outputs["overlay_written"] >= 1 and outputs["overlay_errors"] == 0
    drawn_or_counted = outputs["overlay_written"] + outputs["overlay_skipped"] + outputs["overlay_dropped"]
    assert drawn_or_counted == run["published"]  # every published frame drawn, or skipped or dropped and counted
    assert outputs["overlay_written"] <= 30 * 1.5 + 2  # paced to 30 frames per second of capture, not the pipeline's
    assert outputs["video_frames"] == outputs["overlay_written"]  # the video decodes back, frame for frame
    assert outputs["frames_with_pose"] == run["published"]  # every published frame carried position and attitude
    assert outputs["pose_samples"]["GLOBAL_POSITION_INT"] >= 1 and outputs["pose_samples"]["ATTITUDE"] >= 1
    # the recording, as crackseg run --record wires it: every published frame committed once the run flushed it
    assert outputs["record_errors"] == outputs["record_lost"] == outputs["record_dropped"] == 0
    assert outputs["recorded"] == run["published"]
    # camera thumbnails of frames with cracks, at most one every 200 ms of capture (or counted as skipped under a
    # backlog), none for the others
    assert outputs["recorded_with_cracks"] > 0  # the replayed masks have cracks, so thumbnails are due
    assert outputs["thumbnails_written"] + outputs["thumbnails_skipped"] <= outputs["recorded_with_cracks"]
    assert outputs["thumbnails_written"] + outputs["thumbnails_skipped"] <= run["elapsed_s"] / 0.2 + 1
    assert outputs["thumbnails_written"] >= 1  # the first frame with cracks finds the backlog empty
    assert f"| {outputs['recorded']} / {outputs['thumbnails_written']} |" in done.stdout  # recorded / thumbnails
    ratio = result["ratios"]["inspection_over_pipeline"]
    assert ratio["target"] == ">= 0.95"
    assert ratio["value"] == pytest.approx(run["throughput_fps"] / pipeline["throughput_fps"])
    assert "| replay 20 ms | fp32 | 64x64 | 1 | inspection |" in done.stdout  # in the stage and capacity tables
    dropped = f"{outputs['overlay_skipped']} of {run['published']} skipped by its 30 fps pacing, "
    dropped += f"{outputs['overlay_dropped']} dropped from it"
    recorded = f"recording {outputs['recorded']} of {run['published']} frames, {outputs['thumbnails_written']} camera "
    recorded += f"thumbnails for {outputs['recorded_with_cracks']} frames with cracks"
    assert any(note.startswith("inspection: overlay video") and dropped in note and recorded in note
               for note in result["notes"])  # fmt: skip
    assert dropped in done.stdout


def test_inspection_records_as_crackseg_run_records_with_hfov_70_and_mavlink() -> None:
    spec, url = ModelSpec(arch="scnet-t", threshold=0.4), "udpin:127.0.0.1:14550"
    recorder = run_recorder(run_config(Path("flight.db"), "fast", "synthetic://", url), Path("m.onnx"), spec, 0.4,
                            "synthetic://")  # fmt: skip
    info = recorder.run_info  # what the report builds the inventory from: the camera and the pose source
    assert info["camera"] == {"hfov_deg": HFOV_DEG} and info["mavlink"] == url
    assert info["stats"] == "fast" and info["model"] == "m.onnx" and info["threshold"] == 0.4
    assert recorder.trace_min_px == MIN_CRACK_PIXELS  # a run with a camera traces its cracks as it records them
    without_camera = RunConfig(source="synthetic://", record=Path("flight.db"), pose=PoseConfig(mavlink=url))
    assert run_recorder(without_camera, Path("m.onnx"), spec, 0.4, "synthetic://").trace_min_px is None


def test_inspection_without_pymavlink_is_a_one_line_error_naming_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    monkeypatch.setitem(sys.modules, "pymavlink", None)  # as on an install without crackseg[pose]
    assert main(["bench", "--backend", "replay", "--size", "64x64", "--inspection", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--inspection (pose tagging from MAVLink) needs the Python package 'pymavlink'" in err
    assert "pip install 'crackseg[pose]'" in err
