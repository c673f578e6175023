"""Which bundled model every command loads by default, chosen by a stated rule from measurements.

Drones and crawlers rarely see DeepCrack's close-ups, so the default is not the paper-benchmark model
but the bundled model with the best mean F1 at its shipped threshold over the validation splits of
the training domains (each split weighted equally; test splits are reported, never used to choose),
among those whose ONNX Runtime CPU latency at 512x512 is at most ``max_latency_ratio`` times the
reference's (``scnet-t``), both measured in one ``crackseg bench`` run.

The measurements, and the commands that produced them, are kept beside the models in
``default.json``; changing the default means re-measuring, not editing a name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MEASUREMENTS", "Candidate", "DefaultRule", "choose_default", "load_rule"]

MEASUREMENTS = Path(__file__).with_name("default.json")


@dataclass(frozen=True)
class Candidate:
    """One bundled model's measurements.

    Attributes:
        name: the bundled model's name.
        validation_f1: F1 at the model's shipped threshold on each validation split, by dataset.
        latency_ratio: its raw p50 latency over the reference model's, from the same bench run.
    """

    name: str
    validation_f1: Mapping[str, float]
    latency_ratio: float

    def mean_f1(self, datasets: Sequence[str]) -> float:
        missing = [dataset for dataset in datasets if dataset not in self.validation_f1]
        if missing:
            raise ValueError(f"{self.name} has no validation F1 for {', '.join(missing)}")
        return sum(self.validation_f1[dataset] for dataset in datasets) / len(datasets)


@dataclass(frozen=True)
class DefaultRule:
    """The rule's parameters and the candidates it chooses among."""

    datasets: tuple[str, ...]
    max_latency_ratio: float
    candidates: tuple[Candidate, ...]


def choose_default(rule: DefaultRule) -> str:
    """The candidate with the best mean validation F1 among those fast enough.

    Raises:
        ValueError: no candidate is within the latency bound, or one lacks a dataset's figure.
    """
    fast_enough = [c for c in rule.candidates if c.latency_ratio <= rule.max_latency_ratio]
    if not fast_enough:
        raise ValueError(f"no bundled model is within {rule.max_latency_ratio}x the reference's latency")
    return max(fast_enough, key=lambda candidate: candidate.mean_f1(rule.datasets)).name


def load_rule(path: Path = MEASUREMENTS) -> DefaultRule:
    """The rule as recorded in ``path`` (``default.json``)."""
    record = json.loads(path.read_text())
    latency = record["bench"]["latency_ratio"]
    candidates = tuple(
        Candidate(name, scores, latency[name]) for name, scores in record["validation_f1_at_threshold"].items()
    )
    return DefaultRule(tuple(record["datasets"]), record["max_latency_ratio"], candidates)
