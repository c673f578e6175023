"""List the registered model variants with parameters and GFLOPs at 512x512.

FLOPs are counted by torch.utils.flop_counter on a 1x3x512x512 input in inference mode (meta device:
nothing is computed), as 2 x multiply-accumulates.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from crackseg.train.models import create_model, describe_model, list_models

__all__ = ["ModelSummary", "add_args", "model_summary", "run"]


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, params, gflops_512}")


@dataclass(frozen=True)
class ModelSummary:
    name: str
    params: int
    gflops_512: float
    summary: str


def model_summary(name: str) -> ModelSummary:
    """Name, parameter count, GFLOPs per 512x512 frame and the builder's docstring line."""
    with torch.device("meta"):
        model = create_model(name).eval()
        image = torch.zeros(1, 3, 512, 512)
        with FlopCounterMode(display=False) as counter:
            model(image)
    return ModelSummary(
        name=name,
        params=sum(p.numel() for p in model.parameters()),
        gflops_512=counter.get_total_flops() / 1e9,
        summary=describe_model(name),
    )


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}; known: {', '.join(list_models())}")
        return 1
    rows = [model_summary(name) for name in names]
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=1))
        return 0
    print(f"{'model':<14} {'params':>9} {'GFLOPs@512':>11}  description")
    for row in rows:
        print(f"{row.name:<14} {row.params / 1e6:>8.2f}M {row.gflops_512:>11.2f}  {row.summary}")
    return 0
