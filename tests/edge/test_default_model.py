"""The default model is the one its measurements pick, by the rule stated in edge/models/default.py."""

from __future__ import annotations

import pytest

from crackseg.edge.models import BUNDLED_MODELS
from crackseg.edge.models.default import Candidate, DefaultRule, choose_default, load_rule

DATASETS = ("Drone", "Wall")


def _rule(*candidates: Candidate, max_ratio: float = 1.5) -> DefaultRule:
    return DefaultRule(DATASETS, max_ratio, candidates)


def test_the_best_mean_validation_f1_wins_each_dataset_weighted_equally() -> None:
    specialist = Candidate("specialist", {"Drone": 0.30, "Wall": 0.95}, 1.0)  # mean 0.625
    generalist = Candidate("generalist", {"Drone": 0.60, "Wall": 0.70}, 1.2)  # mean 0.65
    assert choose_default(_rule(specialist, generalist)) == "generalist"


def test_a_model_slower_than_the_latency_bound_is_passed_over_however_accurate() -> None:
    fast = Candidate("fast", {"Drone": 0.5, "Wall": 0.5}, 1.0)
    slow = Candidate("slow", {"Drone": 0.9, "Wall": 0.9}, 1.51)
    assert choose_default(_rule(fast, slow)) == "fast"
    assert choose_default(_rule(fast, slow, max_ratio=2.0)) == "slow"


def test_a_candidate_missing_a_datasets_figure_is_an_error_not_a_silent_zero() -> None:
    partial = Candidate("partial", {"Drone": 0.9}, 1.0)
    with pytest.raises(ValueError, match="partial has no validation F1 for Wall"):
        choose_default(_rule(partial))


def test_no_candidate_fast_enough_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"within 1\.5x"):
        choose_default(_rule(Candidate("slow", {"Drone": 0.9, "Wall": 0.9}, 3.0)))


def test_what_crackseg_run_loads_is_what_the_bundled_measurements_choose() -> None:
    """Every bundled model is measured on the seven validation splits, and the runtime's default file is the
    rule's choice (not a name written somewhere else)."""
    from crackseg.edge.runtime.assembly import default_model

    rule = load_rule()
    assert {candidate.name for candidate in rule.candidates} == set(BUNDLED_MODELS)
    assert len(rule.datasets) == 7
    assert default_model().name == f"{choose_default(rule)}.onnx"
