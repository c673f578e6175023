"""Quantize an FP32 ONNX model to INT8 (Q/DQ) on training crops, and gate it on validation F1.

TensorRT 10 builds the result with int8=True and no calibrator (explicit quantization): INT8 symmetric,
zero point 0, per-channel convolution weights, per-tensor activations. Only convolutions are quantized;
the edge prior, the first convolution and every single-channel branch (attention gates, side outputs,
final fuse) stay in float by default.

Steps:
  1. calibration set: --samples random square crops of --crop pixels from the --calib-split images of
     --data (or from the frames in --calib-images), cached by content hash in --cache-dir
  2. ranges: max (no clipping, the default), entropy (TensorRT's KL method) or percentile (--percentile);
     crack evidence lives in the rare large activations that entropy and percentile clip
  3. gate: FP32 and INT8 are scored by the shared evaluator on --val-split at native resolution (export
     with dynamic shapes unless every image fits the fixed size); if INT8 loses more than --budget points
     of ODS F1 it is refused (exit 1, only the report is written) unless --force

More layers can stay in float with --keep-fp32 (node names or globs of the exported graph; the report
lists the excluded_nodes of the defaults). If the gate refuses, try another --method or more --samples,
or keep more layers in float.

Example:
  crackseg calib --model scnet-t.onnx --data datasets/DeepCrack \\
      --calib-split deepcrack_train --val-split deepcrack_val --out scnet-t.int8.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import onnx

from crackseg.calib.data import (
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    CalibrationDataError,
    calibration_feeds,
    default_cache_dir,
    find_images,
    load_or_build,
)
from crackseg.calib.gate import DEFAULT_BUDGET_POINTS, GateReport, check_gate, compare
from crackseg.calib.qdq import (
    DEFAULT_KEEP_FP32,
    QuantConfig,
    calibration_info,
    input_size,
    quantize_qdq,
    set_calibration_info,
)
from crackseg.calib.ranges import DEFAULT_PERCENTILE, METHODS
from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.artifact.size import Size, parse_size
from crackseg.edge.artifact.size_options import add_old_size_spelling
from crackseg.edge.backends import open_runner
from crackseg.edge.evaluation.dataset import CrackDataset, resolve_split
from crackseg.export.onnx import read_onnx

__all__ = ["add_args", "run"]


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="FP32 crackseg ONNX model (from crackseg export)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root (images/ and masks/)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--calib-split",
        help="training split of --data to calibrate on: bundled split (deepcrack_train), .txt or folder",
    )
    source.add_argument("--calib-images", type=Path, help="calibrate on every image in this folder (no masks needed)")
    parser.add_argument(
        "--val-split",
        required=True,
        help="held-out split of --data the gate scores (deepcrack_val; 'test' if you must)",
    )
    parser.add_argument(
        "--method", choices=METHODS, default="max", help="range calibration method (default: %(default)s)"
    )
    parser.add_argument(
        "--percentile",
        type=float_in(above=0, at_most=100),
        default=DEFAULT_PERCENTILE,
        help="percentile of |x| for --method percentile",
    )
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="calibration crops (default: %(default)s)")
    parser.add_argument(
        "--size", type=parse_size, metavar="WxH", help="calibration crop (default: the model's input size)"
    )
    add_old_size_spelling(parser, ["--crop"], "size")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the crop draw (default: %(default)s)")
    parser.add_argument(
        "--keep-fp32",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="more ONNX node names or globs to keep in float, e.g. '/decoder/blocks.0/*'",
    )
    parser.add_argument(
        "--no-default-keep",
        action="store_true",
        help=f"quantize the default float layers too ({', '.join(DEFAULT_KEEP_FP32)})",
    )
    parser.add_argument(
        "--budget",
        type=float_in(at_least=0),
        default=DEFAULT_BUDGET_POINTS,
        help="largest ODS F1 loss in points (default: 1.0)",
    )
    parser.add_argument("--force", action="store_true", help="write the INT8 model even if it fails the gate")
    parser.add_argument("--worst", type=int, default=10, help="images listed in the report as worst cases")
    parser.add_argument("--out", type=Path, help="INT8 model to write (default: MODEL.int8.onnx)")
    parser.add_argument("--report", type=Path, help="gate report JSON (default: OUT with suffix .gate.json)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="calibration crop cache folder")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out or args.model.with_suffix(".int8.onnx")
    report_path: Path = args.report or out.with_suffix(".gate.json")
    if out.resolve() == args.model.resolve():
        raise CalibrationDataError(f"--out {out} would overwrite the FP32 model")
    model, spec = read_onnx(args.model)
    static = input_size(model)
    size = args.size or static or spec.input_size
    if static and size != static:
        raise CalibrationDataError(f"the model's input is fixed at {static}: leave out --size")
    if size.height % spec.size_multiple or size.width % spec.size_multiple:
        raise CalibrationDataError(f"--size {size} is not a multiple of the model's {spec.size_multiple}")
    config = QuantConfig(
        method=args.method,
        percentile=args.percentile,
        keep_fp32=(() if args.no_default_keep else DEFAULT_KEEP_FP32) + tuple(args.keep_fp32),
    )
    held_out = CrackDataset(args.data, resolve_split(args.val_split))
    if args.calib_images:
        images = find_images(args.calib_images)
    else:
        images = find_images(args.data, resolve_split(args.calib_split))
    _refuse_overlap(images, held_out)
    if static:
        _check_static_fits(static, held_out, spec.size_multiple)

    calibration, cache = load_or_build(images, args.cache_dir, size, args.samples, args.seed)
    print(f"calibration set: {len(calibration)} crops {size} from {len(images)} images ({cache})")
    quantized = quantize_qdq(
        model,
        spec,
        calibration_feeds(calibration, spec),
        config,
        calibration={**calibration.summary(), "source_onnx_sha256": sha256_file(args.model)},
        total=len(calibration),
    )
    record = calibration_info(quantized) or {}
    print(
        f"quantized {record['quantized_nodes']} convolutions with {args.method} ranges; "
        f"{len(record['excluded_nodes'])} kept in float"
    )

    tmp = out.with_name(f".{out.stem}.tmp.onnx")  # the backend is chosen by suffix
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        onnx.save(quantized, str(tmp))
        with open_runner(args.model) as fp32, open_runner(tmp) as int8:
            print(f"scoring FP32 and INT8 on {args.val_split} ({len(held_out)} images)")
            report = compare(fp32, int8, held_out, budget_points=args.budget, worst=args.worst)
        gate = {**report.to_dict(), "forced": args.force and not report.passed, "split": args.val_split}
        _write_report(report_path, args, out, record, gate)
        _print_report(report)
        check_gate(report, args.force, hint=f"report: {report_path}; --force writes it anyway")
        gate_record = {key: gate[key] for key in ("passed", "forced", "budget_points", "drop_points", "split")}
        scores = {key: gate["int8"][key] for key in ("ods_f1", "f1_at_threshold")}
        set_calibration_info(quantized, {**record, "gate": {**gate_record, **scores, "threshold": report.threshold}})
        onnx.save(quantized, str(out))
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} and {report_path}")
    return 0


def _refuse_overlap(images: list[Path], held_out: CrackDataset) -> None:
    """Calibrating on the images the gate scores would flatter INT8: refuse it."""
    scored = {held_out.image_path(index).resolve() for index in range(len(held_out))}
    shared = sorted(path for path in images if path.resolve() in scored)
    if shared:
        raise CalibrationDataError(
            f"{len(shared)} calibration images are also in the gate's split (e.g. {shared[0]}): "
            "calibrate on training images"
        )


def _check_static_fits(static: Size, held_out: CrackDataset, multiple: int) -> None:
    """The evaluator segments images at native resolution: a fixed-size model must fit every held-out image."""
    for index in range(len(held_out)):
        height, width = held_out.load(index)[0].shape[:2]
        padded = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
        if padded != static:
            raise CalibrationDataError(
                f"the model's input is fixed at {static} but {held_out.image_path(index)} is "
                f"{width}x{height}: the gate scores images at native resolution, so export the model with "
                "dynamic shapes"
            )


def _write_report(
    path: Path, args: argparse.Namespace, out: Path, record: dict[str, Any], gate: dict[str, Any]
) -> None:
    report = {
        "fp32_model": str(args.model),
        "int8_model": str(out),
        "dataset": str(args.data),
        "calibration": record,
        "gate": gate,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))


def _print_report(report: GateReport) -> None:
    at = f"F1@{report.threshold:.2f}"
    print(f"  {'':6}{'ODS F1':>8}{at:>9}{'AP':>8}")
    for name, scores in (("FP32", report.fp32), ("INT8", report.int8)):
        print(f"  {name:6}{scores.ods_f1:8.4f}{scores.f1_at(report.threshold):9.4f}{scores.ap:8.4f}")
    drops = f"{report.ods_drop_points:7.2f}p{report.operating_drop_points:8.2f}p{report.ap_drop_points:7.2f}p"
    print(f"  {'drop':6}{drops}  (budget {report.budget_points:.2f}p on both F1)")
    if report.worst:
        print(f"  worst images at threshold {report.threshold:.2f} (F1 FP32 -> INT8, agreement):")
        for item in report.worst[:5]:
            print(f"    {item.stem}: {item.f1_fp32:.3f} -> {item.f1_int8:.3f} ({item.agreement:.3f})")
