"""Measure speed: raw inference, the streaming pipeline end to end and a naive loop, for each configuration.

Every combination of --model, --backend, --precision, --size and --batch is one configuration; the
whole sweep is checked before anything runs. Each configuration is measured at two levels:

  raw         the backend alone: warm-up, then back-to-back device-synchronized calls (trtexec-style):
              latency mean/p50/p90/p95/p99 and throughput
  end to end  (batch 1) the real `crackseg run` pipeline from --source to a ZeroMQ subscriber in a second
              process: throughput, capture-to-publish and capture-to-receipt latency, drops, per-stage
              times; the same with the source paced at --load (80 %) of the raw throughput, as a live
              camera; and a naive single-thread loop with the same model, for comparison

The report states three ratios with their targets: pipeline / raw throughput (>= 0.95), capture-to-publish
p50 at the load point / raw p50 (<= 1.3) and pipeline / naive throughput (> 1).

With --inspection, one more run follows the pipeline run: the same pipeline with the inspection outputs of
`crackseg run --record F.db --hfov 70 --overlay out.mp4 --mavlink URL` on: the recording (every frame's mask,
camera thumbnails of frames with cracks, a few a second) and an overlay video written to a temporary folder, and every
frame tagged with the pose from a simulated autopilot streaming MAVLink position and attitude at 50 Hz on
loopback (needs crackseg[pose]). As in `crackseg run --hfov`, the recorder traces the cracks of up to five
frames a second for the crack inventory, which `crackseg report` builds from the recording after the run. The
run's ratio, inspection / pipeline throughput, has the target
>= 0.95; the overlay frames dropped (the overlay drops rather than slow publishing) and the frames recorded
and thumbnails written are counted in the table and notes.

Backends: ort-cpu, ort-cuda, ort-trt (ONNX Runtime with that provider only), tensorrt, torch-cpu,
torch-cuda (eager), torch-cuda-cl (channels-last), torch-cuda-graph (channels-last + CUDA graph) and
torch-cuda-compile (channels-last + torch.compile "reduce-overhead"). replay is a measuring instrument:
the ONNX model's real maps of the frames, recorded beforehand on the CPU, each returned after
--replay-ms of sleep, so the runtime's own capacity is measured at any inference rate on any machine;
its results say "replay" wherever they appear. A model is a file (.onnx,
.engine/.plan, .safetensors) or a variant name such as scnet-t: a random-init model exported on the fly,
which needs torch (speed does not depend on the weights).
FP16 and INT8 ONNX models are made on the fly from an FP32 one (INT8 calibrated on synthetic frames:
right for speed, not accuracy); TensorRT engines are built for each input shape.

  crackseg bench                              # bundled model, ort-cpu, fp32, 512x512, batch 1
  crackseg bench --model scnet-t --precision fp32 int8 --json bench.json --plot bench.png
  crackseg bench --model m.onnx --backend tensorrt ort-cuda --precision fp16 --size 512x512 1024x1024
  crackseg bench --backend replay --replay-ms 5 --source /data/DeepCrack/images/test   # the runtime alone
  crackseg bench --backend replay --replay-ms 10 --inspection --e2e-duration 20   # what recording+overlay+pose cost

Every end-to-end run also reports the frames per second each pipeline stage could sustain alone and
names the slowest one, the bottleneck.

The Markdown table is printed (and written with --markdown); --json writes the schema of edge/BENCH.md.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.artifact.precision import PRECISIONS
from crackseg.edge.artifact.size import parse_size
from crackseg.edge.bench.config import BACKENDS, BenchConfig, BenchError, MeasureConfig, plan, require
from crackseg.edge.bench.report import markdown, write_json, write_markdown, write_plot
from crackseg.edge.bench.sweep import run_bench
from crackseg.edge.cli.options import add_stats_mode
from crackseg.edge.runtime.assembly import default_model
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS
from crackseg.edge.runtime.sources import open_source

__all__ = ["add_args", "run"]

_SWEEP = BenchConfig()
_MEASURE = MeasureConfig()


def add_args(parser: argparse.ArgumentParser) -> None:
    sweep = parser.add_argument_group("sweep (every combination is one configuration)")
    sweep.add_argument(
        "--model", nargs="+", default=list(_SWEEP.models), metavar="MODEL",
        help="variant names or model files (default: the bundled model)",
    )  # fmt: skip
    sweep.add_argument(
        "--backend", nargs="+", default=list(_SWEEP.backends), metavar="NAME",
        help=f"{', '.join(BACKENDS)} (default: %(default)s)",
    )  # fmt: skip
    sweep.add_argument(
        "--precision", nargs="+", default=list(_SWEEP.precisions), metavar="P",
        help=f"{', '.join(PRECISIONS)} (default: %(default)s)",
    )  # fmt: skip
    sweep.add_argument(
        "--size", nargs="+", type=parse_size, default=list(_SWEEP.sizes), metavar="WxH",
        help="network input sizes (default: 512x512)",
    )  # fmt: skip
    sweep.add_argument("--batch", nargs="+", type=int, default=list(_SWEEP.batches), metavar="N", help="batch sizes")

    raw = parser.add_argument_group("raw inference")
    raw.add_argument(
        "--warmup",
        type=float_in(at_least=0),
        default=_MEASURE.warmup_s,
        metavar="S",
        help="warm-up seconds (%(default)s)",
    )
    length = raw.add_mutually_exclusive_group()
    length.add_argument("--iterations", type=int, metavar="N", help="time exactly N calls")
    length.add_argument(
        "--duration", type=float_in(above=0), default=_MEASURE.duration_s, metavar="S",
        help=f"time calls for S seconds, at least {_MEASURE.min_iterations} (default: %(default)s)",
    )  # fmt: skip
    raw.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime intra-op threads (default: its choice)")

    e2e = parser.add_argument_group("end to end")
    e2e.add_argument("--no-e2e", action="store_true", help="measure raw inference only")
    e2e.add_argument(
        "--inspection", action="store_true",
        help="after the pipeline run, run it again with the recording (masks, camera thumbnails), the overlay "
        "video and MAVLink pose tagging on (as crackseg run --record F.db --hfov 70 --overlay out.mp4 --mavlink "
        "URL; a loopback autopilot at 50 Hz) and report inspection / pipeline fps (target >= 0.95), the overlay's "
        "dropped frames and the frames recorded / thumbnails written; the crack inventory costs the run nothing "
        "(crackseg report builds it afterwards); needs crackseg[pose]",
    )  # fmt: skip
    e2e.add_argument(
        "--e2e-duration", type=float_in(above=0), default=_MEASURE.e2e_duration_s, metavar="S",
        help="seconds of capture per run: pipeline, naive loop, load point (default: %(default)s)",
    )  # fmt: skip
    e2e.add_argument(
        "--load", type=float_in(above=0), default=_MEASURE.load, metavar="FRACTION",
        help="load point: source rate as a fraction of the raw throughput (default: %(default)s)",
    )  # fmt: skip
    e2e.add_argument("--source", default=_MEASURE.source, help="frame source URI (default: %(default)s)")
    e2e.add_argument(
        "--frame-pool", type=int, default=_MEASURE.frame_pool, metavar="N",
        help="distinct frames read from the source once and replayed (default: %(default)s)",
    )  # fmt: skip
    e2e.add_argument("--encoding", choices=sorted(ENCODINGS), default=_MEASURE.encoding, help="mask encoding")
    e2e.add_argument(
        "--postprocess-workers", type=int, metavar="N",
        help="the pipeline's postprocessing threads (default: one per usable core)",
    )  # fmt: skip
    add_stats_mode(e2e)
    e2e.add_argument(
        "--replay-ms", type=float_in(at_least=0), default=_MEASURE.replay_ms, metavar="MS",
        help="latency of each call of the replay backend (default: %(default)s)",
    )  # fmt: skip

    made = parser.add_argument_group("models made on the fly")
    made.add_argument(
        "--calib-frames", type=int, default=_MEASURE.calib_frames, metavar="N",
        help="synthetic frames to calibrate INT8 models (default: %(default)s)",
    )  # fmt: skip
    made.add_argument("--cache-dir", type=Path, metavar="DIR", help="keep made models here (default: a temp dir)")

    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON (edge/BENCH.md)")
    output.add_argument("--markdown", type=Path, metavar="FILE", help="also write the printed table here")
    output.add_argument("--plot", type=Path, metavar="FILE", help="latency distributions and throughput as PNG")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace) -> BenchConfig:
    measure = MeasureConfig(
        warmup_s=args.warmup,
        iterations=args.iterations,
        duration_s=args.duration,
        end_to_end=not args.no_e2e,
        inspection=args.inspection,
        e2e_duration_s=args.e2e_duration,
        load=args.load,
        source=args.source,
        frame_pool=args.frame_pool,
        encoding=args.encoding,
        threads=args.threads,
        calib_frames=args.calib_frames,
        replay_ms=args.replay_ms,
        postprocess_workers=args.postprocess_workers,
        stats=args.stats,
    )
    return BenchConfig(
        models=tuple(args.model),
        backends=tuple(args.backend),
        precisions=tuple(args.precision),
        sizes=tuple(args.size),
        batches=tuple(args.batch),
        measure=measure,
        cache_dir=args.cache_dir,
    )


def _check_outputs(args: argparse.Namespace) -> None:
    for option, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if path is not None and not path.parent.is_dir():
            raise BenchError(f"{option} {path}: the directory {path.parent} does not exist")
    if args.plot is not None:
        require("matplotlib", "--plot", "pip install matplotlib")


@contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """INFO logs off while the progress bar runs (kept with -v): the pipeline logs every run's start and end,
    ONNX Runtime's quantizer every bias it copies."""
    root = logging.getLogger()
    level = root.level
    if not verbose:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_outputs(args)
    if config.measure.end_to_end:
        open_source(config.measure.source)  # a bad URI or option fails now (nothing is opened)
    cases = plan(config, None if config.models else default_model())
    with _quiet(args.verbose):
        report = run_bench(config, cases, progress=not args.no_progress)
    print(markdown(report), end="", flush=True)
    if args.markdown is not None:
        write_markdown(report, args.markdown)
    if args.json is not None:
        write_json(report, args.json)
    if args.plot is not None:
        write_plot(report, args.plot)
    return 0
