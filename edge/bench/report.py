"""The three outputs of ``crackseg bench``: the JSON document, a Markdown table and a PNG plot.

The JSON follows ``edge/BENCH.md`` (``schema_version``); the Markdown is for people (it is also printed),
and the plot shows each case's latency distribution, its throughput at each level (raw, pipeline, pipeline
with the inspection outputs (recording, overlay, pose) when measured, naive) and what each pipeline stage
could sustain alone, with the bottleneck marked. A replay case is labelled with its
latency (``replay 5 ms``) everywhere it appears. matplotlib
is imported only for the plot, and through ``Figure`` directly, so no GUI backend or pyplot state is involved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crackseg.edge.bench.results import (
    PIPELINE_STAGES,
    STAGES,
    TARGETS,
    BenchReport,
    CaseResult,
    EndToEndResult,
    LatencyStats,
    Ratio,
)

__all__ = ["markdown", "write_json", "write_markdown", "write_plot"]

_NONE = "–"
_RATIO_COLUMNS = {
    "pipeline_over_raw": "pipeline / raw fps",
    "load_p50_over_raw_p50": "p50 @ load / raw p50",
    "pipeline_over_naive": "pipeline / naive fps",
    "inspection_over_pipeline": "inspection / pipeline fps",
}
_RUNS = ("pipeline", "inspection", "naive", "load")
"""The end-to-end runs, in the order they are measured and listed."""


def write_json(report: BenchReport, path: Path) -> Path:
    """Writes the report as indented JSON (NaN and infinities are refused: the schema has none)."""
    path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _num(value: float | None, digits: int = 1) -> str:
    return _NONE if value is None else f"{value:.{digits}f}"


def _p50(stats: LatencyStats | None) -> str:
    return _num(stats.p50_ms if stats is not None else None, 2 if stats is not None and stats.p50_ms < 10 else 1)


def _ratio(ratio: Ratio) -> str:
    if ratio.value is None:
        return _NONE
    return f"{ratio.value:.2f} {'✓' if ratio.met else '✗'}"


def _fps(run: EndToEndResult | None) -> str:
    return _num(run.throughput_fps if run is not None else None)


def _machine_line(report: BenchReport) -> str:
    machine = report.machine
    cpu = machine["cpu"]
    load = machine.get("load_average")
    gpus = ", ".join(f"{gpu['name']} (driver {gpu['driver']})" for gpu in machine["gpus"]) or "no NVIDIA GPU"
    libraries = ", ".join(f"{name} {version}" for name, version in machine["libraries"].items() if version)
    busy = f", load average {load[0]:.1f} at start" if load else ""
    jetson = machine.get("jetson")
    power = f"; Jetson power mode: {jetson['power_mode']}" if jetson and jetson.get("power_mode") else ""
    return f"{cpu['model']}, {cpu['usable_cores']} usable cores{busy}; {gpus}{power}; {libraries}"


def _case_cells(result: CaseResult) -> list[str]:
    config = result.config
    return [
        config.model,
        config.backend_label,
        config.precision,
        f"{config.input_width}x{config.input_height}",
        str(config.batch),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _runs(result: CaseResult, modes: tuple[str, ...] = _RUNS) -> list[EndToEndResult]:
    """The end-to-end runs of ``modes`` the case has, in that order."""
    return [run for mode in modes if (run := getattr(result, mode)) is not None]


def _overlay_drops(run: EndToEndResult | None) -> str:
    if run is None or run.inspection is None:
        return _NONE
    return f"{run.inspection.overlay_dropped} / {run.published}"


def _recorded(run: EndToEndResult | None) -> str:
    """Frames recorded / camera thumbnails written, of the inspection run."""
    if run is None or run.inspection is None:
        return _NONE
    return f"{run.inspection.recorded} / {run.inspection.thumbnails_written}"


def markdown(report: BenchReport) -> str:
    """A summary table (raw, pipeline, inspection, load point, naive, target ratios) and a per-stage table."""
    ratio_header = [f"{_RATIO_COLUMNS[name]} ({rule} {limit})" for name, (rule, limit) in TARGETS.items()]
    header = ["model", "backend", "precision", "input", "batch", "raw p50 ms", "raw p99 ms", "raw fps",
              "pipeline fps", "inspection fps", "overlay drops", "recorded / thumbnails", "naive fps",
              "pipeline c→p p50 ms", "c→p p99 ms", "load point fps", "load c→p p50 ms", "load drops"]  # fmt: skip
    summary = _table(
        [*header, *ratio_header],
        [
            [
                *_case_cells(result),
                _num(result.raw.latency.p50_ms, 2),
                _num(result.raw.latency.p99_ms, 2),
                _num(result.raw.throughput_fps),
                _fps(result.pipeline),
                _fps(result.inspection),
                _overlay_drops(result.inspection),
                _recorded(result.inspection),
                _fps(result.naive),
                _p50(result.pipeline.capture_to_publish if result.pipeline else None),
                _num(result.pipeline.capture_to_publish.p99_ms)
                if result.pipeline and result.pipeline.capture_to_publish
                else _NONE,
                _num(result.load.source_fps) if result.load else _NONE,
                _p50(result.load.capture_to_publish if result.load else None),
                f"{100 * result.load.drop_rate:.1f} %" if result.load else _NONE,
                *(_ratio(result.ratios[name]) for name in TARGETS),
            ]
            for result in report.results
        ],
    )
    stage_rows = [
        [
            *_case_cells(result),
            run.mode,
            *(_p50(run.stages[stage]) for stage in STAGES),
            _p50(run.capture_to_publish),
            _p50(run.subscriber.capture_to_receive),
            f"{run.subscriber.lost} / {run.published}",
        ]
        for result in report.results
        for run in _runs(result)
    ]
    lines = [f"crackseg bench, {report.created}: {_machine_line(report)}", "", *summary]
    if stage_rows:
        stage_header = ["model", "backend", "precision", "input", "batch", "run", *STAGES]
        lines += ["", "Per-stage p50 ms (c→p: capture to publish; c→r: capture to receipt by the subscriber):", ""]
        lines += _table([*stage_header, "c→p", "c→r", "lost at subscriber"], stage_rows)
    capacity_rows = [
        [
            *_case_cells(result),
            run.mode,
            str(run.postprocess_workers),
            *(_num(run.capacity_fps.get(stage)) for stage in PIPELINE_STAGES),
            run.bottleneck or _NONE,
            _fps(run),
        ]
        for result in report.results
        for run in _runs(result, ("pipeline", "inspection", "load"))
    ]
    if capacity_rows:
        capacity_header = ["model", "backend", "precision", "input", "batch", "run", "postprocess workers"]
        lines += ["", "Capacity: frames per second each stage could sustain alone (postprocess: all its workers; "
                  "publish: encode + hand-off), and the slowest stage:", ""]  # fmt: skip
        lines += _table([*capacity_header, *PIPELINE_STAGES, "bottleneck", "measured fps"], capacity_rows)
    notes = [f"- {result.config.model} {result.config.backend_label} {result.config.precision}: {note}"
             for result in report.results for note in result.notes]  # fmt: skip
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_markdown(report: BenchReport, path: Path) -> Path:
    path.write_text(markdown(report), encoding="utf-8")
    return path


def _offsets(count: int, slots: int) -> tuple[list[list[float]], float]:
    """Positions of ``slots`` side-by-side items in each of ``count`` rows, and their height."""
    height = 0.8 / slots
    return [[row + (slot - (slots - 1) / 2) * height for row in range(count)] for slot in range(slots)], height


def _plot_capacity(axes: Any, results: list[CaseResult]) -> None:
    """Bars of the frames per second each stage could sustain alone in the pipeline run; the bottleneck hatched."""
    positions, height = _offsets(len(results), len(PIPELINE_STAGES))
    for slot, stage in enumerate(PIPELINE_STAGES):
        values = [(r.pipeline.capacity_fps.get(stage) or 0.0) if r.pipeline else 0.0 for r in results]
        bars = axes.barh(positions[slot], values, height=height, color=f"C{slot}")
        for bar, result in zip(bars, results, strict=True):
            if result.pipeline is not None and result.pipeline.bottleneck == stage:
                bar.set_hatch("//")
                bar.set_edgecolor("black")
        axes.plot([], [], marker="s", linestyle="none", color=f"C{slot}", label=stage)  # a plain legend entry
    axes.set_xscale("log")
    axes.set_xlabel("stage capacity in the pipeline run, fps (hatched: the bottleneck)")


def write_plot(report: BenchReport, path: Path) -> Path:
    """Per case: latency distributions (raw calls, pipeline capture to publish), throughput at each level, and
    each stage's capacity in the pipeline run (the bottleneck hatched)."""
    import matplotlib
    from matplotlib.figure import Figure

    major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
    horizontal = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}  # renamed in 3.10
    results = report.results
    labels = [
        f"{r.config.model} {r.config.backend_label} {r.config.precision} "
        f"{r.config.input_width}x{r.config.input_height} b{r.config.batch}"
        for r in results
    ]
    series = [
        (key, name)
        for key, name in (
            ("raw", "raw inference, per call"),
            ("load", "pipeline at the load point, capture→publish"),
            ("pipeline", "pipeline at full speed, capture→publish"),
            ("inspection", "pipeline with recording, overlay and pose, capture→publish"),
        )
        if any(r.samples_ms.get(key) for r in results)
    ]
    levels = [
        (name, values)
        for name, values in (
            ("raw", [r.raw.throughput_fps for r in results]),
            ("pipeline", [r.pipeline.throughput_fps if r.pipeline else 0.0 for r in results]),
            ("inspection", [r.inspection.throughput_fps if r.inspection else 0.0 for r in results]),
            ("naive", [r.naive.throughput_fps if r.naive else 0.0 for r in results]),
        )
        if any(values)
    ]
    figure = Figure(figsize=(18, 1.5 + 0.9 * len(results)), layout="constrained")
    latency_axes, fps_axes, capacity_axes = figure.subplots(1, 3, sharey=True)
    positions, height = _offsets(len(results), len(series))
    for slot, (key, name) in enumerate(series):
        boxes = latency_axes.boxplot(
            [r.samples_ms.get(key) or [float("nan")] for r in results], positions=positions[slot],
            widths=height * 0.9, whis=(1, 99), showfliers=False, patch_artist=True, manage_ticks=False,
            medianprops={"color": "black"}, **horizontal,
        )  # fmt: skip
        for box in boxes["boxes"]:
            box.set_facecolor(f"C{slot}")
        boxes["boxes"][0].set_label(name)
    every = [value for r in results for values in r.samples_ms.values() for value in values]
    if every and max(every) > 20 * min(every):
        latency_axes.set_xscale("log")
    latency_axes.set_xlabel("latency, ms (box: p25-p75, line: p50, whiskers: p1-p99)")
    positions, height = _offsets(len(results), len(levels))
    for slot, (name, values) in enumerate(levels):
        fps_axes.barh(positions[slot], values, height=height, label=name, color=f"C{slot + 3}")
    fps_axes.set_xlabel("throughput, frames per second")
    _plot_capacity(capacity_axes, results)
    latency_axes.set_yticks(range(len(results)), labels)
    latency_axes.invert_yaxis()
    for axes in (latency_axes, fps_axes, capacity_axes):
        axes.grid(axis="x", alpha=0.3)
        axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"crackseg bench, {report.created}")
    figure.savefig(path, dpi=110)
    return path
