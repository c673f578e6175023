"""Train several variants under one budget, score each on the same test sets, and write the comparison table.

Every run is a crackseg train of one (model, seed) followed by crackseg eval of its best checkpoint
on the test split and on each --also set, in a subprocess of its own with its log in its folder, so
runs can share a GPU (--jobs) and a failed run does not stop the others. A run that already finished
training is not trained again, and an evaluation already written is not repeated: rerun the
same command to finish an interrupted comparison or to add --also sets.

Writes <out>/compare.json (every run's metrics) and <out>/compare.md (mean +- standard deviation
over seeds per model and test set, with parameters, GFLOPs at 512x512, epochs trained and minutes).

  crackseg compare --data DeepCrack --train-split deepcrack_train --val-split deepcrack_val --test-split test \\
      --models scnet scnet-t deepcrack-liu deepcrack-zou hcnn pspnet cgnet --epochs 100 --jobs 4

Several training sources are given as for crackseg train (--data repeated, ROOT[:TRAIN[:VAL]][:options]);
--test-split then scores every source's ROOT on that split, and --also adds any other test set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.evaluation.dataset import CrackDataset, DatasetError, resolve_split
from crackseg.train.commands.models import model_summary
from crackseg.train.data.sources import SOURCE_SYNTAX, parse_source
from crackseg.train.loop import RECIPES
from crackseg.train.models import list_models

__all__ = ["EvalSet", "RunResult", "add_args", "markdown_table", "run"]

_METRICS = ("ods_f1", "ois_f1", "ap", "miou", "crack_iou", "region_f1")
"""What compare.json keeps of each evaluation (every report is also kept whole in its run folder)."""
_TABLE_METRICS = {"ods_f1": "ODS F1", "miou": "mIoU", "ap": "AP"}
"""What compare.md shows, to keep the table readable."""


@dataclass(frozen=True)
class EvalSet:
    """A dataset (and optional split) every trained model is scored on."""

    data: Path
    split: str | None

    @property
    def label(self) -> str:
        return f"{self.data.name}/{self.split or 'all'}"

    @classmethod
    def parse(cls, text: str) -> EvalSet:
        """``ROOT`` (all images) or ``ROOT:SPLIT``."""
        root, _, split = text.partition(":")
        return cls(Path(root), split or None)


@dataclass
class RunResult:
    """One (model, seed) run: where it lives, how long it trained and what each evaluation scored."""

    model: str
    seed: int
    folder: str
    epochs: int = 0
    minutes: float = 0.0
    val_score: float = 0.0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, choices=list_models(), metavar="MODEL", help="variants")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds per model (default: 0)")
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar=SOURCE_SYNTAX,
        help="training source, repeatable, as for crackseg train",
    )
    parser.add_argument("--train-split", default="train", help="training split of sources that name none")
    parser.add_argument(
        "--val-split", help="validation split of sources that name none: picks checkpoints and thresholds"
    )
    parser.add_argument("--test-split", help="split of every --data source that every model is scored on")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        type=EvalSet.parse,
        metavar="ROOT[:SPLIT]",
        help="another dataset to score on (cross-dataset generalization); repeatable",
    )
    parser.add_argument("--out", type=Path, help="comparison folder (default: runs/compare-<dataset>)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, e.g. several on one GPU (default: 1)")
    budget = parser.add_argument_group("the budget every run gets (passed to crackseg train)")
    budget.add_argument("--epochs", type=int, default=100, help="training epochs (default: 100)")
    budget.add_argument(
        "--time-limit", type=float_in(above=0), metavar="MIN", help="wall-clock cap per run, in minutes"
    )
    budget.add_argument("--recipe", default="fast", choices=sorted(RECIPES), help="optimizer recipe (default: fast)")
    budget.add_argument("--loss", default="paper", choices=["paper", "scnet"], help="each model's own loss or SCNet's")
    budget.add_argument("--batch-size", type=int, help="per-run batch size (default: the recipe's)")
    budget.add_argument("--workers", type=int, default=2, help="data loader workers per run (default: 2)")


def _crackseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "crackseg.edge.cli.main", *args]


def _train_command(args: argparse.Namespace, model: str, seed: int, folder: Path) -> list[str]:
    command = _crackseg(
        "train",
        "--model", model,
        "--seed", str(seed),
        *[item for source in args.data for item in ("--data", source)],
        "--train-split", args.train_split,
        *(["--val-split", args.val_split] if args.val_split else []),
        "--out", str(folder),
        "--epochs", str(args.epochs),
        "--recipe", args.recipe,
        "--loss", args.loss,
        "--workers", str(args.workers),
    )  # fmt: skip
    if args.time_limit is not None:
        command += ["--time-limit", str(args.time_limit)]
    if args.batch_size is not None:
        command += ["--batch-size", str(args.batch_size)]
    return command


def _eval_command(checkpoint: Path, target: EvalSet, report: Path) -> list[str]:
    split = ["--split", target.split] if target.split else []
    return _crackseg("eval", "--model", str(checkpoint), "--data", str(target.data), *split, "--json", str(report))


def _report_path(folder: Path, target: EvalSet) -> Path:
    return folder / f"eval-{target.label.replace('/', '-')}.json"


def _call(command: list[str], log: Path) -> None:
    """Runs ``command`` with its output appended to ``log``; a failure names the log."""
    with log.open("a") as stream:
        stream.write(f"$ {' '.join(command)}\n")
        stream.flush()
        if subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=False).returncode:
            raise CracksegError(f"{command[3]} failed; see {log}")


def _check_exists(target: EvalSet) -> None:
    """Fails before any training when a test set cannot be read."""
    try:
        CrackDataset(target.data, resolve_split(target.split) if target.split else None)
    except DatasetError as exc:
        raise CracksegError(f"test set {target.label}: {exc}") from exc


def _run_one(args: argparse.Namespace, model: str, seed: int, targets: list[EvalSet]) -> RunResult:
    folder = args.out / f"{model}-seed{seed}"
    result = RunResult(model, seed, str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log, checkpoint, minutes = folder / "compare.log", folder / "best.safetensors", folder / "train_minutes.txt"
        if not minutes.is_file():  # written once training has finished
            start = time.monotonic()
            _call(_train_command(args, model, seed, folder), log)
            minutes.write_text(f"{(time.monotonic() - start) / 60:.2f}\n")
        for target in targets:
            if not _report_path(folder, target).is_file():
                _call(_eval_command(checkpoint, target, _report_path(folder, target)), log)
        history = json.loads((folder / "history.json").read_text())
        result.epochs = len(history)
        result.val_score = max(row["val_score"] for row in history)
        result.minutes = float(minutes.read_text())
        for target in targets:
            report = json.loads(_report_path(folder, target).read_text())
            result.scores[target.label] = {name: float(report[name]) for name in _METRICS}
    except (OSError, ValueError, KeyError, CracksegError) as exc:
        result.error = str(exc)
    return result


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def markdown_table(results: list[RunResult], labels: list[str]) -> str:
    """One row per model: mean (± standard deviation over seeds) of each metric on each evaluation set."""
    models = list(dict.fromkeys(result.model for result in results if not result.error))
    header = ["model", "seeds", "params", "GFLOPs@512", "epochs", "train min"]
    header += [f"{label} {name}" for label in labels for name in _TABLE_METRICS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        runs = [result for result in results if result.model == model and not result.error]
        summary = model_summary(model)
        cells = [
            model,
            str(len(runs)),
            f"{summary.params / 1e6:.2f} M",
            f"{summary.gflops_512:.1f}",
            "/".join(str(run.epochs) for run in runs),
            f"{statistics.mean(run.minutes for run in runs):.1f}",
        ]
        cells += [_mean_std([run.scores[label][name] for run in runs]) for label in labels for name in _TABLE_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CracksegError(f"--jobs must be at least 1, not {args.jobs}")
    sources = [parse_source(text, args.train_split, args.val_split) for text in args.data]
    tests = [EvalSet(source.root, args.test_split) for source in sources] if args.test_split else []
    targets = [*tests, *args.also]
    if not targets:
        raise CracksegError("nothing to score the models on: give --test-split, --also, or both")
    for target in targets:
        _check_exists(target)
    args.out = args.out or Path("runs") / f"compare-{sources[0].name}"
    pairs = [(model, seed) for model in args.models for seed in args.seeds]
    print(f"{len(pairs)} runs, {args.jobs} at a time, in {args.out} (each run's log: <run>/compare.log)")
    results: list[RunResult] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, tqdm(total=len(pairs), unit="run") as bar:
        futures = [pool.submit(_run_one, args, model, seed, targets) for model, seed in pairs]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            bar.update()
            status = f"failed: {result.error}" if result.error else f"validation F1 {result.val_score:.4f}"
            tqdm.write(f"{result.model} seed {result.seed}: {status}")
    results.sort(key=lambda result: (args.models.index(result.model), result.seed))
    labels = [target.label for target in targets]
    table = markdown_table(results, labels)
    (args.out / "compare.json").write_text(json.dumps([asdict(result) for result in results], indent=1))
    (args.out / "compare.md").write_text(table)
    print(table, end="")
    failed = [result for result in results if result.error]
    return 1 if failed else 0
