"""Score a model (checkpoint, ONNX or engine) on a crack dataset with the reference protocol.

Protocol (named in every report): DeepSegmentor's eval/prf_metrics.py, as used by DeepCrack and
SCNet: thresholds 0.00..0.99 on the probability (p > t), counts pooled over the dataset, ODS F1
with its threshold, OIS F1, AP, mIoU and crack IoU at the ODS threshold, region F1 on 32x32 patches.
Images are segmented at native resolution (padded to the model's size multiple, then cropped back).
``--tolerance 0 2`` scores the same predictions under the strict protocol and the 2-px tolerance one,
side by side (centreline labels such as UAV75's need both). Every protocol also reports the F1 at the
model's own operating threshold: ODS picks the best threshold after seeing the answers, the
operating threshold is what a deployed model delivers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from crackseg.edge.backends import open_runner
from crackseg.edge.evaluation.dataset import CrackDataset, resolve_split
from crackseg.edge.evaluation.evaluate import ImageCallback, evaluate_protocols
from crackseg.edge.evaluation.metrics import MetricsReport, binarize
from crackseg.edge.evaluation.operating_point import OperatingPoint, drop_small_components
from crackseg.edge.models import BUNDLED_MODELS, bundled_model, model_path

__all__ = ["add_args", "run"]


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=model_path,
        help=f"model file (.safetensors, .onnx or .engine) or bundled model name ({', '.join(BUNDLED_MODELS)}); "
        "default: the bundled default model",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset root (images/ and masks/)")
    parser.add_argument(
        "--split", help="subfolder name (test), split file, or bundled split (cfd_test); default: all images"
    )
    parser.add_argument(
        "--tolerance",
        type=int,
        nargs="+",
        default=[0],
        choices=[0, 1, 2, 5],
        help="tolerance in px, one or more: 0 is the strict reference protocol (default); '0 2' reports both",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--pr-plot", type=Path, help="write the precision-recall curve as PNG here")
    parser.add_argument("--overlays", type=Path, help="write one overlay image per input into this folder")


def _write_pr_plot(report: MetricsReport, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(report.recall, report.precision)
    ods = report.curve_index(report.ods_threshold)
    label = f"ODS F1 {report.ods_f1:.3f} @ {report.ods_threshold:.2f}"
    ax.scatter([report.recall[ods]], [report.precision[ods]], color="red", zorder=3, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _overlay_writer(folder: Path, threshold: float, min_component_px: int) -> ImageCallback:
    """Writes the image with true positives green, false positives red and misses blue."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)

    def write(stem: str, image: np.ndarray, prob: np.ndarray, truth: np.ndarray) -> None:
        predicted = drop_small_components(binarize(prob, threshold), min_component_px)
        overlay = image.copy()
        overlay[predicted & truth] = (0, 255, 0)
        overlay[predicted & ~truth] = (255, 0, 0)
        overlay[~predicted & truth] = (0, 0, 255)
        cv2.imwrite(str(folder / f"{stem.replace('/', '_')}.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))

    return write


def _summary(report: MetricsReport, point: OperatingPoint, tolerance_px: int) -> dict[str, object]:
    """The curve's report, the F1 at the operating threshold on the curve, and the shipped operating point."""
    return {
        **report.to_dict(),
        "operating_threshold": point.threshold,
        "f1_at_operating_threshold": report.f1_at(point.threshold),
        "operating_point": {"min_component_px": point.min_component_px, **point.scores(tolerance_px)},
    }


def _print(report: MetricsReport, summary: dict[str, Any]) -> None:
    shipped = summary["operating_point"]
    rule = f", components >= {shipped['min_component_px']} px" if shipped["min_component_px"] else ""
    print(f"protocol: {report.protocol}")
    print(
        f"  ODS F1 {report.ods_f1:.4f} @ {report.ods_threshold:.2f}   OIS F1 {report.ois_f1:.4f}   AP {report.ap:.4f}\n"
        f"  mIoU {report.miou:.4f}   crack IoU {report.crack_iou:.4f}   region F1 {report.region_f1:.4f}\n"
        f"  F1 {shipped['f1']:.4f} (precision {shipped['precision']:.4f}, recall {shipped['recall']:.4f}) at the "
        f"model's operating point (threshold {summary['operating_threshold']:.2f}{rule}; chosen on validation data)"
    )


def _print_clutter(clutter: dict[str, float | int | None]) -> None:
    free = clutter["fp_components_per_crack_free_image"]
    on_free = f"; {free:.2f} on the {clutter['crack_free_images']} crack-free images" if free is not None else ""
    print(
        f"false-positive components (no labelled crack within 2 px) at the operating point: "
        f"{clutter['fp_components_per_image']:.2f} per image{on_free}"
    )


def run(args: argparse.Namespace) -> int:
    model = args.model or bundled_model()
    tolerances = list(dict.fromkeys(args.tolerance))
    dataset = CrackDataset(args.data, resolve_split(args.split) if args.split else None)
    with open_runner(model) as runner:
        spec = runner.spec
        point = OperatingPoint(spec.threshold, spec.min_component_px, tolerances)
        overlays = _overlay_writer(args.overlays, spec.threshold, spec.min_component_px) if args.overlays else None

        def on_image(stem: str, image: np.ndarray, prob: np.ndarray, truth: np.ndarray) -> None:
            point.update(prob, truth)
            if overlays is not None:
                overlays(stem, image, prob, truth)

        reports = evaluate_protocols(runner, dataset, tolerances, on_image=on_image)
    summaries = [_summary(report, point, tolerance) for report, tolerance in zip(reports, tolerances, strict=True)]
    print(f"model {model.name} on {args.data.name}/{args.split or 'all'} ({reports[0].images} images)")
    for report, summary in zip(reports, summaries, strict=True):
        _print(report, summary)
    _print_clutter(point.clutter())
    if args.json:
        where = {"model": str(model), "dataset": str(args.data), "split": args.split, **point.clutter()}
        result = {
            **summaries[0],
            **where,
            "protocols": [{"tolerance_px": t, **s} for t, s in zip(tolerances, summaries, strict=True)],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.pr_plot:
        _write_pr_plot(reports[0], args.pr_plot, f"{model.name} on {args.data.name}")
    return 0
