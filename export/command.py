"""Export a checkpoint to ONNX (checked against PyTorch), or an ONNX file to a TensorRT engine with its manifest.

  crackseg export onnx --model runs/scnet-t/best.safetensors --out scnet-t.onnx --dynamic --fp16 \\
      --parity-data DeepCrack --parity-split deepcrack_val
  crackseg export engine --onnx scnet-t.onnx --precision fp16          (on the Jetson or GPU that will run it)
  crackseg export engine --onnx scnet-t.int8.onnx --precision int8     (a Q/DQ file from crackseg calib)

'export onnx' compares the ONNX model with the checkpoint on real images and fails when they
disagree by more than the tolerance. 'export engine' writes <engine>.json beside the engine; an
existing engine is reused when its manifest matches, refused when it does not, rebuilt with --rebuild.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.artifact.precision import PRECISIONS
from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.size_options import SizeOrOldHeightWidth
from crackseg.export.parity import FP16_TOLERANCE, FP32_TOLERANCE

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from torch import nn

    from crackseg.edge.artifact.manifest import Profile
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.export.parity import ParityReport, Sample

    Checkpoint = tuple[nn.Module, ModelSpec]

__all__ = ["add_args", "parse_shape", "run"]


ONNX_DESCRIPTION = (
    "Export a checkpoint to ONNX with the model spec in its metadata, then compare ONNX Runtime with PyTorch "
    "on real images (--parity-data) or synthetic ones; fails when the largest probability difference exceeds "
    "--tolerance. --fp16 also writes a float16 model (float32 input and output) for FP16 engines on "
    "TensorRT versions that build strongly typed networks only."
)
ENGINE_DESCRIPTION = (
    "Build a TensorRT engine on this machine (engines are specific to the GPU and TensorRT version) and write "
    "its manifest. FP16: builder flag on TensorRT 10, or an FP16 ONNX (export onnx --fp16) on TensorRT 11 "
    "and TensorRT for RTX. INT8: a Q/DQ ONNX from crackseg calib. Needs TensorRT: JetPack on a Jetson, "
    "pip install 'crackseg[trt]' on x86."
)


def add_args(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx", help="checkpoint -> ONNX, with a parity check against PyTorch", description=ONNX_DESCRIPTION
    )
    onnx.add_argument("--model", type=Path, required=True, help="checkpoint (.safetensors) written by crackseg train")
    onnx.add_argument("--out", type=Path, help="ONNX file to write (default: the checkpoint's name with .onnx)")
    onnx.add_argument(
        "--size",
        nargs="+",
        action=SizeOrOldHeightWidth,
        metavar="WxH",
        help="input size, or trace size with --dynamic (default: the model's input size)",
    )
    onnx.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    onnx.add_argument("--opset", type=int, help="ONNX opset (default: the pinned one)")
    onnx.add_argument("--fp16", action="store_true", help="also write <out>.fp16.onnx (float16 inside, float32 I/O)")
    onnx.add_argument("--no-simplify", action="store_true", help="skip onnxslim's constant folding")
    onnx.add_argument("--parity-data", type=Path, help="dataset root for the parity check (default: synthetic images)")
    onnx.add_argument("--parity-split", help="subfolder, split file or bundled split (e.g. deepcrack_val)")
    onnx.add_argument("--parity-images", type=int, default=8, help="images to compare (default 8)")
    onnx.add_argument(
        "--tolerance",
        type=float_in(at_least=0),
        default=FP32_TOLERANCE,
        help=f"max abs probability error (default {FP32_TOLERANCE})",
    )
    onnx.add_argument(
        "--fp16-tolerance",
        type=float_in(at_least=0),
        default=FP16_TOLERANCE,
        help=f"the same for --fp16 (default {FP16_TOLERANCE})",
    )
    onnx.set_defaults(export_run=run_onnx)

    engine = formats.add_parser(
        "engine", help="ONNX -> TensorRT engine + manifest, built on this GPU", description=ENGINE_DESCRIPTION
    )
    engine.add_argument("--onnx", type=Path, required=True, help="crackseg ONNX file (FP32, FP16 or Q/DQ INT8)")
    engine.add_argument("--precision", choices=PRECISIONS, required=True, help="engine precision")
    engine.add_argument("--out", type=Path, help="engine file (default: named after model, precision, TensorRT, GPU)")
    for label in ("min", "opt", "max"):
        engine.add_argument(
            f"--{label}-shape",
            type=parse_shape,
            metavar="WxH",
            help=f"{label} input shape, WxH or NxCxHxW (dynamic ONNX)",
        )
    engine.add_argument("--workspace-mib", type=int, help="builder scratch memory cap (default 1024)")
    engine.add_argument("--dla-core", type=int, help="build for this DLA core (Jetson), GPU fallback on")
    engine.add_argument("--timing-cache", type=Path, help="timing cache file, read and updated (faster rebuilds)")
    engine.add_argument(
        "--strongly-typed",
        action=argparse.BooleanOptionalAction,
        help="network typing mode (default: strongly typed for FP16 and Q/DQ ONNX files)",
    )
    engine.add_argument(
        "--rtx-target",
        nargs="+",
        type=str.upper,
        metavar="SM",
        help="TensorRT for RTX only: build ahead of time for these GPU architectures (e.g. sm89 SM120) "
        "instead of for this GPU",
    )
    engine.add_argument("--rebuild", action="store_true", help="build even if a matching engine exists")
    engine.set_defaults(export_run=run_engine)


def run(args: argparse.Namespace) -> int:
    result: int = args.export_run(args)
    return result


def parse_shape(text: str) -> tuple[int, ...]:
    """``WxH`` (batch 1, 3 channels; ``640x480`` is 640 wide) or ``NxCxHxW`` (array order) to an NCHW tuple.

    Until this release the two-number form was ``HxW``; a non-square one prints a deprecation note on stderr
    that gives the spelling of the old meaning.
    """
    try:
        sizes = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) not in (2, 4) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape: write WxH or NxCxHxW, e.g. 512x512")
    if len(sizes) == 4:
        return sizes
    size = Size(height=sizes[1], width=sizes[0])
    if size.height != size.width:
        print(
            f"crackseg export engine: warning: the HxW shape spelling is deprecated; {text} now reads as WxH "
            f"(width {size.width}, height {size.height}), as every size does; for the old meaning write "
            f"{size.height}x{size.width}",
            file=sys.stderr,
        )
    return (1, 3, size.height, size.width)


def run_onnx(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401  (export needs the training stack)
    except ImportError as exc:
        raise CracksegError("crackseg export onnx needs PyTorch: pip install 'crackseg[export]'") from exc
    import onnx

    from crackseg.export.onnx import DEFAULT_OPSET, FP16_KEEP_FP32, convert_to_fp16, export_onnx, op_counts
    from crackseg.train.checkpoint import load_checkpoint

    if args.parity_images < 1:
        raise CracksegError("--parity-images must be at least 1")
    out: Path = args.out or args.model.with_suffix(".onnx")
    model, spec = load_checkpoint(args.model)
    size: Size = args.size or spec.input_size
    opset = args.opset or DEFAULT_OPSET
    partial = out.with_name(out.name + ".partial")
    export_onnx(model, spec, partial, size, args.dynamic, opset, simplify=not args.no_simplify)
    graph = onnx.load(str(partial))
    ops = ", ".join(f"{op} {count}" for op, count in sorted(op_counts(graph).items()))
    shape = "dynamic NxHxW" if args.dynamic else f"1x3x{size[0]}x{size[1]}"
    print(f"exported {args.model.name} ({spec.arch}) to ONNX opset {opset}, input {shape}\n  operators: {ops}")
    check = _ParityCheck(args, (model, spec), size)
    check.publish(partial, out, args.tolerance)
    if args.fp16:
        fp16_out = out.with_name(out.name.removesuffix(".onnx") + ".fp16.onnx")
        fp16_partial = fp16_out.with_name(fp16_out.name + ".partial")
        onnx.save(convert_to_fp16(graph), str(fp16_partial))
        print(f"converted to float16 (float32 kept for {', '.join(sorted(FP16_KEEP_FP32))}; float32 input/output)")
        check.publish(fp16_partial, fp16_out, args.fp16_tolerance)
    return 0


DEEPCRACK_SIZE = Size(height=384, width=544)
"""The size of DeepCrack's images, 544x384: the synthetic parity images' default."""


def synthetic_images(count: int, size: Size = DEEPCRACK_SIZE, seed: int = 0) -> Iterator[Sample]:
    """``count`` synthetic crack images of ``size``; DeepCrack's image size by default."""
    from crackseg.edge.runtime.sources.synthetic import CrackSynth

    height, width = size
    synth = CrackSynth(width=width, height=height, seed=seed)
    for index in range(count):
        image, _ = synth.render(index)
        yield f"synthetic-{index}", image


class _ParityCheck:
    """Compares exported files with the checkpoint on the images the options name, then publishes or deletes them.

    Both models run on the CPU, so the comparison measures the export, not a GPU's TF32 or kernel choices.
    Synthetic images have the export size; real ones their native size (cropped or padded to a static input).
    """

    def __init__(self, args: argparse.Namespace, reference: Checkpoint, size: Size) -> None:
        self.reference = reference
        self.static = None if args.dynamic else size
        self.data, self.split, self.count, self.size = args.parity_data, args.parity_split, args.parity_images, size
        if self.data:
            split = f"/{self.split}" if self.split else ""
            fitted = f", fitted to the static {size} input" if self.static else ""
            self.source = f"images of {self.data.name}{split} at native resolution{fitted}"
        else:
            self.source = f"synthetic crack images ({size}; pass --parity-data for real ones)"

    def samples(self) -> Iterable[Sample]:
        from crackseg.export.parity import dataset_images

        if self.data:
            return dataset_images(self.data, self.split, self.count)
        return synthetic_images(self.count, self.size)

    def report(self, candidate: Path, tolerance: float) -> ParityReport:
        from crackseg.edge.backends.onnxrt import OnnxRuntimeRunner
        from crackseg.edge.backends.pytorch import TorchRunner
        from crackseg.export.parity import compare_runners

        with (
            TorchRunner(self.reference, device="cpu") as torch_runner,
            OnnxRuntimeRunner(candidate, providers=("CPUExecutionProvider",)) as onnx_runner,
        ):
            return compare_runners(torch_runner, onnx_runner, self.samples(), tolerance, self.source, self.static)

    def publish(self, partial: Path, out: Path, tolerance: float) -> None:
        """Moves ``partial`` to ``out`` if it passes; deletes it otherwise (a failed export leaves no file)."""
        from crackseg.export.parity import ParityError

        try:
            report = self.report(partial, tolerance)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        print(f"  {report}")
        if not report.passed:
            partial.unlink(missing_ok=True)
            raise ParityError(
                f"{out.name} was not written: its output differs from the checkpoint's by {report.max_abs_error:.2e} "
                f"(worst image {report.worst_image}), more than the tolerance {tolerance:.0e}"
            )
        partial.replace(out)
        print(f"wrote {out}")


def run_engine(args: argparse.Namespace) -> int:
    try:
        from crackseg.export.engine import (
            DEFAULT_PROFILE,
            DEFAULT_WORKSPACE_MIB,
            EngineFromOnnx,
            SaveEngine,
            engine_name,
        )
    except ImportError as exc:
        raise CracksegError(f"crackseg export engine needs the onnx package ({exc}): pip install onnx") from exc
    from crackseg.edge.artifact.hashing import sha256_file
    from crackseg.edge.artifact.manifest import ManifestMismatch, Profile, check_manifest, read_manifest
    from crackseg.edge.backends.trt import build_runtime, load_tensorrt
    from crackseg.export.onnx import read_onnx

    read_onnx(args.onnx)  # a missing, corrupt or foreign file is reported as such, TensorRT or not
    load_tensorrt()
    shapes = (args.min_shape, args.opt_shape, args.max_shape)
    requested: Profile | None = None
    if any(shapes):
        default = (DEFAULT_PROFILE.min, DEFAULT_PROFILE.opt, DEFAULT_PROFILE.max)
        requested = Profile(*(shape or fallback for shape, fallback in zip(shapes, default, strict=True)))
    loader = EngineFromOnnx(
        args.onnx,
        precision=args.precision,
        profile=requested,
        workspace_mib=args.workspace_mib or DEFAULT_WORKSPACE_MIB,
        dla_core=args.dla_core,
        timing_cache=args.timing_cache,
        strongly_typed=args.strongly_typed,
        rtx_targets=tuple(args.rtx_target or ()),
    )
    plan = loader.plan()
    runtime = build_runtime(plan.builder.rtx_targets)
    out: Path = args.out or engine_name(args.onnx, args.precision, runtime, args.dla_core, plan.builder.rtx_targets)
    if out.exists() and not args.rebuild:
        differences = check_manifest(
            read_manifest(out),
            runtime=runtime,
            onnx_path=plan.onnx_path,
            engine_sha256=sha256_file(out),
            precision=plan.precision,
            profile=plan.profile,
            builder=plan.builder,
            loading=False,
        )
        if differences:
            raise ManifestMismatch(out, differences, hint="Pass --rebuild to build it again with these options")
        print(f"{out} is up to date (its manifest matches); pass --rebuild to build it anyway")
        return 0
    print(
        f"building {out.name}: {plan.precision}, {'strongly' if plan.builder.strongly_typed else 'weakly'} typed, "
        f"profile {plan.profile}, workspace {plan.builder.workspace_mib} MiB on {runtime.gpu}"
        f"{' for ' + ', '.join(plan.builder.rtx_targets) if plan.builder.rtx_targets else ''} "
        f"with {runtime.tensorrt_module} {runtime.tensorrt_version} (this can take minutes)"
    )
    SaveEngine(loader, out)()
    print(f"wrote {out} and its manifest {out.name}.json")
    return 0
