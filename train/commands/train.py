"""Train a model variant on a crack dataset and keep the checkpoint with the best validation ODS F1.

The operating threshold stored in the checkpoint's spec is the ODS threshold on the validation split,
never on the test split. Multi-GPU: launch with torchrun, e.g.
  torchrun --nproc_per_node 4 -m crackseg.edge.cli.main train --model scnet --data DeepCrack ...
Recipes: 'fast' (default: AdamW 2e-3, cosine, batch 8) and 'paper' (SGD 1e-4, momentum 0.9,
weight decay 2e-4, batch 4); explicit flags override the recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist

from crackseg.edge.cli.options import add_old_size_spelling, square_side
from crackseg.edge.errors import CracksegError
from crackseg.edge.evaluation.dataset import CrackDataset, resolve_split
from crackseg.train.data.augment import TrainAugment
from crackseg.train.data.torch_dataset import AugmentedCrackDataset
from crackseg.train.loop import RECIPES, TrainConfig, fit
from crackseg.train.losses.factory import create_loss
from crackseg.train.models import create_model, create_spec, list_models
from crackseg.train.models.backbones import load_backbone_weights

__all__ = ["add_args", "run"]


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="scnet-t", choices=list_models(), help="variant to train (default: scnet-t)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root (images/ and masks/)")
    parser.add_argument(
        "--train-split",
        default="train",
        help="training split: a subfolder name, a split file, or a bundled split such as deepcrack_train",
    )
    parser.add_argument(
        "--val-split", required=True, help="validation split (same forms), e.g. deepcrack_val; never the test split"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<model>-seed<seed>)")
    parser.add_argument("--recipe", default="fast", choices=sorted(RECIPES), help="optimizer recipe (default: fast)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default: 100)")
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="MIN",
        help="wall-clock budget in minutes: train as many epochs (up to --epochs) as fit, the schedule fitted to them",
    )
    parser.add_argument("--batch-size", type=int, help="per-process batch size (default: from the recipe)")
    parser.add_argument("--lr", type=float, help="base learning rate (default: from the recipe)")
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
        "--backbone-weights", type=Path, help="torchvision VGG16/ResNet state dict for the baselines' backbones"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable or inconsistent samples with a warning"
    )


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


def run(args: argparse.Namespace) -> int:
    on_error: Literal["raise", "skip"] = "skip" if args.skip_bad else "raise"
    train_data = CrackDataset(args.data, resolve_split(args.train_split), on_error=on_error)
    val_data = CrackDataset(args.data, resolve_split(args.val_split), on_error=on_error)
    for data in (train_data, val_data):
        data.validate()  # reads every file once: bad samples fail (or are skipped) now, not mid-training
    model_args = {"prior": args.prior, "hed_weights": args.hed_weights} if args.prior == "hed" else {}
    try:
        model = create_model(args.model, **model_args)
    except TypeError as exc:
        raise CracksegError(f"--prior hed applies to the SCNet family only ({exc})") from exc
    if args.backbone_weights:
        load_backbone_weights(model, args.backbone_weights)
    loss_name = model.paper_loss if args.loss == "paper" else "scnet"
    device = _init_distributed(args.device)
    config = TrainConfig.from_recipe(
        args.recipe,
        out_dir=args.out or Path("runs") / f"{args.model}-seed{args.seed}",
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
    )
    spec = create_spec(
        args.model,
        model,
        model_args=model_args,
        training={
            "dataset": args.data.name,
            "train_split": str(args.train_split),
            "val_split": str(args.val_split),
            "train_images": len(train_data),
            "val_images": len(val_data),
            "crop_size": args.crop_size,
            "recipe": args.recipe,
            "loss": loss_name,
            "backbone_weights": str(args.backbone_weights) if args.backbone_weights else None,
            **{k: v for k, v in dataclasses.asdict(config).items() if k in _RECIPE_KEYS},
        },
    )
    augmented = AugmentedCrackDataset(
        train_data, TrainAugment(crop_size=args.crop_size), seed=args.seed, mean=spec.pixel_mean, std=spec.pixel_std
    )
    try:
        result = fit(model, spec, create_loss(loss_name, model.side_weights), augmented, val_data, config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if result.best_epoch > 0:
        print(
            f"best validation ODS F1 {result.best_ods_f1:.4f} at threshold {result.best_threshold:.2f} "
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
}
