"""Checkpoints: weights in safetensors, the model spec in its metadata; resume state beside it.

A checkpoint is self-describing: ``load_checkpoint`` rebuilds the network from the spec's registered
``arch`` and ``model_args`` — never from the file name.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from crackseg.edge.artifact.errors import ArtifactError
from crackseg.edge.artifact.read import read_spec
from crackseg.edge.artifact.spec import SPEC_KEY, ModelSpec
from crackseg.train.models import create_model, is_model

__all__ = ["CheckpointError", "build_model", "load_checkpoint", "save_checkpoint"]


class CheckpointError(ArtifactError, ValueError):
    """A file is not a loadable crackseg checkpoint; the message names the file and the reason."""


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised network as the spec describes it."""
    if not is_model(spec.arch):
        raise CheckpointError(f"unknown model variant {spec.arch!r} (crackseg models lists the known ones)")
    args = {key: tuple(value) if isinstance(value, list) else value for key, value in spec.model_args.items()}
    return create_model(spec.arch, **args)


def save_checkpoint(path: str | Path, model: nn.Module, spec: ModelSpec) -> Path:
    """Writes ``model``'s weights and ``spec`` to a ``.safetensors`` file (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata={SPEC_KEY: spec.to_json()})
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec]:
    """Rebuilds the network named by the checkpoint's spec and loads its weights (strictly).

    Declared as a ``crackseg.network_loaders`` entry point (pyproject.toml): the torch runner loads checkpoints with it.
    """
    from safetensors.torch import load_file

    spec = read_spec(path)
    model = build_model(spec)
    try:
        model.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit variant {spec.arch!r}: {str(exc)[:300]}") from exc
    return model.to(device), spec
