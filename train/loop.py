"""The training loop: plain PyTorch, optional DistributedDataParallel, validation by ODS F1 every epoch.

``fit`` takes a config, a model, a loss and data; it does no registry lookups or file parsing. Training
samples come from a :class:`SourceMix`, drawn by each source's weight; validation scores every
validation set and chooses one shared threshold (:mod:`crackseg.train.validation`). What it writes to
``config.out_dir``: ``best.safetensors`` (highest validation score, spec threshold set to that
epoch's shared threshold), ``last.safetensors`` (spec threshold set to the last epoch's shared
threshold, so exporting it ships a threshold that fits it) + ``last.state.pt`` (for ``--resume``),
``history.json`` and ``curves.png``. With ``ema_decay`` set, validation and both checkpoints hold an
exponential moving average of the weights (updated every step) instead of the last step's weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.pytorch import TorchRunner
from crackseg.train.checkpoint import save_checkpoint
from crackseg.train.data.torch_dataset import SourceMix, WeightedSourceSampler
from crackseg.train.validation import ValidationResult, ValidationSet, validate

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "fit"]

RECIPES: dict[str, dict[str, Any]] = {
    # Sharma et al.: SGD, lr 1e-4, momentum 0.9, weight decay 2e-4, batch 4, constant rate.
    "paper": {
        "optimizer": "sgd",
        "lr": 1e-4,
        "momentum": 0.9,
        "weight_decay": 2e-4,
        "batch_size": 4,
        "schedule": "constant",
    },
    # crackseg's default: AdamW with warm-up and cosine decay; measured against "paper" in the README model card.
    "fast": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "batch_size": 8, "schedule": "cosine"},
}


@dataclass
class TrainConfig:
    """Everything the loop needs besides model and data. Defaults are the 'fast' recipe."""

    out_dir: Path
    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    amp: bool = True
    workers: int = 2
    seed: int = 0
    max_steps_per_epoch: int | None = None
    device: str | None = None
    resume: Path | None = None
    progress: bool = True
    time_limit_min: float | None = None
    """Wall-clock budget: the run plans as many epochs (at most ``epochs``) as fit, and the schedule follows."""
    samples_per_epoch: int | None = None
    """Training samples per epoch over all processes (default: the training sets' total size)."""
    ema_decay: float | None = None
    """Per-step decay of an exponential moving average of the weights, which is then what is validated and saved."""
    encoder_lr_scale: float = 1.0
    """The pretrained encoder's learning rate relative to the rest of the network (discriminative fine-tuning)."""
    freeze_encoder_epochs: float = 0.0
    """Epochs at the start during which the encoder's learning rate is zero (the decoder learns first)."""

    @classmethod
    def from_recipe(cls, recipe: str, **overrides: Any) -> TrainConfig:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPES)}")
        return cls(**{**RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}})


@dataclass
class TrainResult:
    best_score: float = -1.0
    best_threshold: float = 0.5
    best_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)


def _is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """One group, or the encoder's parameters apart when they get their own rate (``is_encoder`` marks them)."""
    params = [p for p in model.parameters() if p.requires_grad]
    encoder = getattr(model, "encoder", None)
    if encoder is None or (config.encoder_lr_scale == 1.0 and not config.freeze_encoder_epochs):
        return [{"params": params, "is_encoder": False}]
    in_encoder = {id(p) for p in encoder.parameters()}
    return [
        {"params": [p for p in params if id(p) in in_encoder], "is_encoder": True},
        {"params": [p for p in params if id(p) not in in_encoder], "is_encoder": False},
    ]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = _param_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; expected 'sgd' or 'adamw'")


def _lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Linear warm-up, then constant or cosine decay to 1 % of the base rate."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _save_curves(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [row["train_loss"] for row in history])
    loss_ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    f1_ax.plot(epochs, [row["val_score"] for row in history], label="F1 at the shared threshold (selects)")
    f1_ax.plot(epochs, [row["val_mean_ods_f1"] for row in history], label="mean ODS F1")
    f1_ax.set(xlabel="epoch", ylabel="F1", title="validation, mean over datasets")
    f1_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _Trainer:
    """State of one training run; ``fit`` is its only user."""

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        loss_fn: nn.Module,
        train_set: SourceMix,
        val_sets: Sequence[ValidationSet],
        config: TrainConfig,
    ) -> None:
        self.config = config
        self.spec = spec
        self.loss_fn = loss_fn
        self.val_sets = val_sets
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.raw_model = model
        self.ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
            if config.ema_decay
            else None
        )
        if self.ema is not None:  # count the starting weights (an --init checkpoint's), not only later ones
            self.ema.update_parameters(model)
        self.kept_model = self.ema.module if self.ema is not None else model
        """The weights validated and saved: the moving average where there is one."""
        if dist.is_initialized():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        sampler = WeightedSourceSampler(
            train_set.sizes,
            train_set.weights,
            config.seed,
            samples_per_rank=config.samples_per_epoch // world if config.samples_per_epoch else None,
            rank=rank,
            world_size=world,
        )
        self.train_set = train_set
        self.loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=config.workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            persistent_workers=config.workers > 0,
        )
        self.steps_per_epoch = len(self.loader)
        if config.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_steps_per_epoch)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(sampler)} training samples make no full batch of {config.batch_size}")
        self.optimizer = _make_optimizer(model, config)
        self.use_amp = config.amp and self.device.type == "cuda"
        torch.backends.cudnn.benchmark = self.device.type == "cuda"  # fixed crop size: pick the fastest kernels once
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.start_epoch = 0
        self.planned_epochs = config.epochs
        self.result = TrainResult()

    def lr_at(self, step: int) -> float:
        total = self.planned_epochs * self.steps_per_epoch
        warmup = int(self.config.warmup_epochs * self.steps_per_epoch)
        return self.config.lr * _lr_factor(step, total, warmup, self.config.schedule)

    def encoder_lr_factor(self) -> float:
        """The encoder's share of the rate now: zero while frozen, then ``encoder_lr_scale``."""
        frozen = self.step < int(self.config.freeze_encoder_epochs * self.steps_per_epoch)
        return 0.0 if frozen else self.config.encoder_lr_scale

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        if isinstance(self.loader.sampler, WeightedSourceSampler):
            self.loader.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{self.planned_epochs}",
            unit="step",
            disable=not (self.config.progress and _is_main_process()),
            leave=False,
        )
        total_loss, seen, start = 0.0, 0, time.perf_counter()
        for batch_index, (cpu_images, cpu_masks, cpu_weights) in enumerate(self.loader):
            if batch_index >= self.steps_per_epoch:
                break
            for group in self.optimizer.param_groups:
                encoder = group.get("is_encoder", False)  # absent in the resume state of runs older than the key
                group["lr"] = self.lr_at(self.step) * (self.encoder_lr_factor() if encoder else 1.0)
            images = cpu_images.to(self.device, non_blocking=True)
            masks = cpu_masks.to(self.device, non_blocking=True)
            pixel_weights = cpu_weights.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                fused, sides = self.model(images)
            loss = self.loss_fn(fused.float(), [s.float() for s in sides], masks, pixel_weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at step {self.step}; lower --lr")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.raw_model)
            self.step += 1
            total_loss += loss.item() * images.shape[0]
            seen += images.shape[0]
            bar.update()
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{seen / (time.perf_counter() - start):.1f}")
        bar.close()
        return total_loss / max(seen, 1)

    def validate(self) -> ValidationResult:
        with TorchRunner((self.kept_model, self.spec), device=str(self.device)) as runner:
            return validate(runner, self.val_sets, progress=self.config.progress)

    def spec_with(self, scores: ValidationResult, epoch: int) -> ModelSpec:
        """The spec with the epoch's shared threshold and the validation figures that chose it."""
        return dataclasses.replace(
            self.spec,
            threshold=scores.threshold,
            metrics={
                **self.spec.metrics,
                "val_score": scores.score,
                "val_threshold": scores.threshold,
                "val_mean_ods_f1": scores.mean_ods_f1,
                "val_per_dataset": scores.per_dataset,
                "val_selection": "mean over validation datasets of F1 at one shared threshold",
                "epoch": epoch,
            },
        )

    def save_resume_state(self, epoch: int, spec: ModelSpec) -> None:
        out = self.config.out_dir
        save_checkpoint(out / "last.safetensors", self.kept_model, spec)
        state = {
            "model": self.raw_model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "result": dataclasses.asdict(self.result),
        }
        torch.save(state, out / "last.state.pt")

    def load_resume_state(self, checkpoint: Path) -> None:
        from safetensors.torch import load_file

        state_path = checkpoint.with_name(checkpoint.name.replace(".safetensors", ".state.pt"))
        if not state_path.is_file():
            raise FileNotFoundError(f"cannot resume: {state_path} (written beside {checkpoint.name}) is missing")
        state = torch.load(state_path, map_location=self.device, weights_only=True)
        if (state.get("ema") is None) != (self.ema is None):
            raise CracksegError(f"cannot resume {checkpoint}: give --ema exactly when the interrupted run had it")
        # state files from before --ema hold no "model": their last.safetensors is the trained weights
        self.raw_model.load_state_dict(state.get("model") or load_file(str(checkpoint), device=str(self.device)))
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.step = state["epoch"] + 1, state["step"]
        self.result = TrainResult(**state["result"])

    def replan(self, epochs_done: int, epochs_this_run: int, elapsed_s: float) -> None:
        """Under a time limit, plans as many epochs as the mean epoch time so far leaves room for.

        The cosine schedule is stretched or shrunk to the new plan (as Ultralytics' ``time`` option does).
        Every process adopts rank 0's plan, so DistributedDataParallel ranks stop together.
        """
        limit_s = (self.config.time_limit_min or 0.0) * 60.0
        if not limit_s:
            return
        fits = int((limit_s - elapsed_s) / (elapsed_s / epochs_this_run))
        planned = torch.tensor([min(self.config.epochs, epochs_done + max(fits, 0))], device=self.device)
        if dist.is_initialized():
            dist.broadcast(planned, src=0)
        self.planned_epochs = int(planned.item())

    def run(self) -> TrainResult:
        out = self.config.out_dir
        out.mkdir(parents=True, exist_ok=True)
        if self.config.resume:
            self.load_resume_state(self.config.resume)
        started, epoch = time.monotonic(), self.start_epoch
        while epoch < self.planned_epochs:
            train_loss = self.train_epoch(epoch)
            epoch += 1
            if _is_main_process():
                self.end_epoch(epoch - 1, train_loss)
            self.replan(epoch, epoch - self.start_epoch, time.monotonic() - started)
        return self.result

    def end_epoch(self, epoch: int, train_loss: float) -> None:
        """Validates, keeps the best checkpoint and writes the resume state, history and curves."""
        out = self.config.out_dir
        scores = self.validate()
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_score": scores.score,
            "val_threshold": scores.threshold,
            "val_mean_ods_f1": scores.mean_ods_f1,
            "val_per_dataset": scores.per_dataset,
            "lr": self.lr_at(self.step - 1),
            "epochs_planned": self.planned_epochs,
        }
        self.result.history.append(row)
        spec = self.spec_with(scores, epoch + 1)
        if scores.score > self.result.best_score:
            self.result.best_score, self.result.best_threshold, self.result.best_epoch = (
                scores.score,
                scores.threshold,
                epoch + 1,
            )
            save_checkpoint(out / "best.safetensors", self.kept_model, spec)
        self.save_resume_state(epoch, spec)
        (out / "history.json").write_text(json.dumps(self.result.history, indent=1))
        _save_curves(self.result.history, out / "curves.png")
        per_dataset = "  ".join(
            f"{name} {figures['f1_at_threshold']:.3f}" for name, figures in scores.per_dataset.items()
        )
        tqdm.write(
            f"epoch {epoch + 1}: loss {train_loss:.4f}  val F1 {scores.score:.4f} @ {scores.threshold:.2f} "
            f"(mean ODS {scores.mean_ods_f1:.4f}; best {self.result.best_score:.4f}, epoch {self.result.best_epoch})"
            + (f"\n  per dataset at {scores.threshold:.2f}: {per_dataset}" if len(scores.per_dataset) > 1 else "")
        )


def fit(
    model: nn.Module,
    spec: ModelSpec,
    loss_fn: nn.Module,
    train_set: SourceMix,
    val_sets: Sequence[ValidationSet],
    config: TrainConfig,
) -> TrainResult:
    """Trains ``model`` and keeps the checkpoint with the best validation score (see module docstring)."""
    torch.manual_seed(config.seed)
    return _Trainer(model, spec, loss_fn, train_set, val_sets, config).run()
