"""Training and evaluation end to end on a tiny synthetic crack set (CPU, seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.artifact.read import read_spec
from crackseg.edge.artifact.spec import SpecError
from crackseg.edge.backends import open_runner
from crackseg.edge.cli.main import main
from crackseg.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _write_crack_set(root: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """Grey textured squares, each crossed by a dark 2-px crack whose pixels are the mask."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        image = rng.normal(150, 12, (size, size, 3)).clip(0, 255).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        start = (int(rng.integers(0, size)), 0)
        end = (int(rng.integers(0, size)), size - 1)
        cv2.line(mask, start, end, 255, 2)
        image[mask > 0] = rng.integers(20, 60)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{index:03d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{index:03d}.png"), mask)
    (root / "train.txt").write_text("\n".join(f"{i:03d}" for i in range(count - 2)) + "\n")
    (root / "val.txt").write_text("\n".join(f"{i:03d}" for i in range(count - 2, count)) + "\n")
    return root


@pytest.fixture(scope="module")
def crack_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_crack_set(tmp_path_factory.mktemp("cracks"), count=10)


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        "scnet-t",
        "--data",
        str(data),
        "--train-split",
        str(data / "train.txt"),
        "--val-split",
        str(data / "val.txt"),
        "--size",
        "64x64",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        str(out),
        *extra,
    ]


def test_training_lowers_the_loss_and_keeps_the_best_checkpoint(crack_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "4", "--lr", "5e-3")) == 0
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = max(history, key=lambda row: row["val_score"])
    spec = read_spec(out / "best.safetensors")
    assert spec.arch == "scnet-t"
    assert spec.threshold == pytest.approx(best["val_threshold"])  # the operating threshold comes from validation
    assert spec.metrics["val_score"] == pytest.approx(best["val_score"])
    # with one validation set the selection score is its ODS F1
    assert best["val_score"] == pytest.approx(best["val_per_dataset"][crack_set.name]["ods_f1"])
    # the last checkpoint ships its own epoch's validation threshold, not the spec default 0.5
    assert read_spec(out / "last.safetensors").threshold == pytest.approx(history[-1]["val_threshold"])
    assert (out / "curves.png").stat().st_size > 0


def test_resume_continues_from_the_last_epoch(crack_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "1")) == 0
    assert main(_train_args(crack_set, out, "--epochs", "2", "--resume", str(out / "last.safetensors"))) == 0
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]


def test_a_time_limit_ends_training_early_and_shortens_the_schedule(crack_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "50", "--time-limit", "0.0001")) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1  # the first epoch alone outlasts 6 ms
    assert history[0]["epochs_planned"] == 50  # the plan changes only once an epoch has been timed
    assert read_spec(out / "best.safetensors").training["time_limit_min"] == 0.0001


def test_eval_scores_a_checkpoint_like_the_training_validation(crack_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "1")) == 0
    report_path = tmp_path / "report.json"
    args = ["eval", "--model", str(out / "best.safetensors"), "--data", str(crack_set), "--split"]
    outputs = ["--json", str(report_path), "--pr-plot", str(tmp_path / "pr.png")]
    assert main([*args, str(crack_set / "val.txt"), *outputs]) == 0
    report = json.loads(report_path.read_text())
    assert {"protocol", "ods_f1", "ods_threshold", "ois_f1", "ap", "crack_iou", "miou", "region_f1", "images"} <= set(
        report
    )
    assert report["images"] == 2
    assert report["operating_threshold"] == pytest.approx(read_spec(out / "best.safetensors").threshold)
    assert 0.0 <= report["f1_at_operating_threshold"] <= report["ods_f1"] + 1e-9  # ODS is the best threshold
    shipped = report["operating_point"]  # no component rule in this spec: the curve's point at the threshold
    assert shipped["min_component_px"] == 0
    assert shipped["f1"] == pytest.approx(report["f1_at_operating_threshold"])
    assert report["fp_components_per_image"] >= 0.0
    validation = json.loads((out / "history.json").read_text())[0]["val_per_dataset"][crack_set.name]
    assert report["ods_f1"] == pytest.approx(validation["ods_f1"])


def test_checkpoint_round_trip_and_onnx_runner_agree(tmp_path: Path) -> None:
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.export.onnx import export_onnx
    from crackseg.train.models import create_model

    model = create_model("scnet-t")
    spec = ModelSpec(arch="scnet-t", threshold=0.37)
    save_checkpoint(tmp_path / "m.safetensors", model, spec)
    loaded, loaded_spec = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded_spec == spec
    export_onnx(loaded, loaded_spec, tmp_path / "m.onnx", input_size=(64, 64), dynamic=True)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)
    with open_runner(tmp_path / "m.safetensors") as torch_runner, open_runner(tmp_path / "m.onnx") as onnx_runner:
        assert onnx_runner.spec == spec
        assert np.abs(torch_runner.infer(image) - onnx_runner.infer(image)).max() <= 1e-4


def test_a_checkpoint_of_an_unknown_variant_is_refused(tmp_path: Path) -> None:
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.train.models import create_model

    save_checkpoint(tmp_path / "m.safetensors", create_model("scnet-t"), ModelSpec(arch="nope"))
    with pytest.raises(CheckpointError, match="unknown model variant 'nope'"):
        load_checkpoint(tmp_path / "m.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(SpecError, match="not a safetensors checkpoint"):
        read_spec(tmp_path / "junk.safetensors")


@pytest.mark.slow
def test_distributed_training_runs_two_cpu_processes(crack_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "crackseg.edge.cli.main",
        *_train_args(crack_set, out, "--epochs", "1", "--device", "cpu"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "best.safetensors").is_file()
    assert len(json.loads((out / "history.json").read_text())) == 1


@pytest.mark.slow
def test_compare_trains_each_model_and_seed_and_tabulates_mean_and_spread(tmp_path: Path) -> None:
    data = _write_crack_set(tmp_path / "cracks", count=6, size=256)
    out = tmp_path / "compare"
    args = ["compare", "--models", "scnet-t", "cgnet", "--seeds", "0", "1", "--data", str(data)]
    args += ["--train-split", str(data / "train.txt"), "--val-split", str(data / "val.txt"), "--test-split"]
    args += [str(data / "val.txt"), "--also", str(data), "--epochs", "1", "--batch-size", "2", "--workers", "0"]
    assert main([*args, "--jobs", "2", "--out", str(out)]) == 0
    runs = json.loads((out / "compare.json").read_text())
    assert [(run["model"], run["seed"]) for run in runs] == [("scnet-t", 0), ("scnet-t", 1), ("cgnet", 0), ("cgnet", 1)]
    assert all(
        run["epochs"] == 1 and set(run["scores"]) == {"cracks/" + str(data / "val.txt"), "cracks/all"} for run in runs
    )
    table = (out / "compare.md").read_text().splitlines()
    assert table[2].startswith("| scnet-t | 2 | 0.23 M |") and "±" in table[2]
    stamp = (out / "cgnet-seed0" / "best.safetensors").stat().st_mtime
    more = ["--also", f"{data}:{data / 'train.txt'}"]
    assert main([*args, *more, "--jobs", "2", "--out", str(out)]) == 0  # trained runs are only evaluated again
    assert (out / "cgnet-seed0" / "best.safetensors").stat().st_mtime == stamp
    assert all(len(run["scores"]) == 3 for run in json.loads((out / "compare.json").read_text()))


def test_two_sources_are_validated_one_by_one_and_share_one_threshold(tmp_path: Path) -> None:
    first = _write_crack_set(tmp_path / "roads", count=6, seed=1)
    second = _write_crack_set(tmp_path / "walls", count=6, seed=2)
    out = tmp_path / "run"
    sources = [f"{root}:{root / 'train.txt'}:{root / 'val.txt'}" for root in (first, second)]
    args = ["train", "--data", sources[0], "--data", sources[1] + ":weight=3:dilate=1:tol=2", "--crop-size", "64"]
    assert main([*args, "--batch-size", "4", "--workers", "0", "--epochs", "1", "--out", str(out)]) == 0
    row = json.loads((out / "history.json").read_text())[0]
    assert set(row["val_per_dataset"]) == {"roads", "walls"}
    f1s = [figures["f1_at_threshold"] for figures in row["val_per_dataset"].values()]
    assert row["val_score"] == pytest.approx(sum(f1s) / 2)
    spec = read_spec(out / "best.safetensors")
    assert spec.threshold == pytest.approx(row["val_threshold"])
    assert [source["weight"] for source in spec.training["sources"]] == [1.0, 3.0]
    assert spec.training["sources"][1]["dilate_px"] == 1 and spec.training["sources"][1]["val_tolerance_px"] == 2


def test_a_dataset_given_twice_is_refused(crack_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"{crack_set}:{crack_set / 'train.txt'}:{crack_set / 'val.txt'}"
    assert main(["train", "--data", source, "--data", source, "--out", str(tmp_path / "run")]) == 1
    assert "more than once" in capsys.readouterr().err


def test_init_starts_from_trained_weights_and_keeps_the_normalization(crack_set: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.train.models import create_model

    normalization = {"pixel_mean": (120.0, 121.0, 122.0), "pixel_std": (60.0, 61.0, 62.0)}
    init = save_checkpoint(
        tmp_path / "init.safetensors", create_model("scnet-t"), ModelSpec(arch="scnet-t", **normalization)
    )
    out = tmp_path / "run"
    # with a zero learning rate the trained weights must be the initial ones, exactly
    assert main(_train_args(crack_set, out, "--epochs", "1", "--lr", "0", "--init", str(init))) == 0
    before, after = load_file(str(init)), load_file(str(out / "last.safetensors"))
    assert before.keys() == after.keys() and all(before[k].equal(after[k]) for k in before)
    spec = read_spec(out / "best.safetensors")
    assert (spec.pixel_mean, spec.pixel_std) == (normalization["pixel_mean"], normalization["pixel_std"])
    assert spec.training["init"] == {"file": "init.safetensors", "sha256": sha256_file(init)}  # no machine path


def test_init_refuses_another_architecture(crack_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.train.models import create_model

    init = save_checkpoint(tmp_path / "init.safetensors", create_model("scnet-t"), ModelSpec(arch="scnet-t"))
    args = _train_args(crack_set, tmp_path / "run", "--epochs", "1", "--init", str(init))
    args[args.index("scnet-t")] = "cgnet"
    assert main(args) == 1
    assert f"--init {init} holds a scnet-t model, not --model cgnet" in capsys.readouterr().err


def test_widen_grows_the_init_checkpoint_into_the_wider_variant(crack_set: Path, tmp_path: Path) -> None:
    import torch

    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.train.models import create_model

    trained = create_model("scnet-t")
    init = save_checkpoint(tmp_path / "init.safetensors", trained, ModelSpec(arch="scnet-t"))
    out = tmp_path / "run"
    args = _train_args(crack_set, out, "--epochs", "1", "--lr", "0", "--init", str(init), "--widen")
    args[args.index("scnet-t")] = "scnet-t-wide"
    assert main(args) == 0
    wide, spec = load_checkpoint(out / "last.safetensors")
    assert (spec.arch, spec.training["widened_from"]) == ("scnet-t-wide", "scnet-t")
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():  # with a zero learning rate, the grown network still computes the trained one
        assert torch.allclose(wide.eval()(image), trained.eval()(image), atol=1e-4)


def test_widen_without_a_wider_model_is_refused(
    crack_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _train_args(crack_set, tmp_path / "run", "--epochs", "1", "--widen")
    assert main(args) == 1
    assert "--widen grows an --init checkpoint into a wider --model: give both" in capsys.readouterr().err


def _untrained_checkpoint(tmp_path: Path) -> Path:
    from crackseg.edge.artifact.spec import ModelSpec
    from crackseg.train.models import create_model

    return save_checkpoint(tmp_path / "init.safetensors", create_model("scnet-t"), ModelSpec(arch="scnet-t"))


def test_ema_keeps_the_moving_average_in_the_checkpoints(crack_set: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    init = _untrained_checkpoint(tmp_path)
    common = ("--epochs", "1", "--lr", "5e-3", "--init", str(init))
    # the same start and seed: both runs take the same steps, one also keeping the average
    assert main(_train_args(crack_set, tmp_path / "plain", *common)) == 0
    assert main(_train_args(crack_set, tmp_path / "ema", *common, "--ema", "0.999999")) == 0
    start = load_file(str(init))
    trained, averaged = (load_file(str(tmp_path / run / "last.safetensors")) for run in ("plain", "ema"))
    moved = max((trained[k] - start[k]).abs().max().item() for k in start)
    averaged_moved = max((averaged[k] - start[k]).abs().max().item() for k in start)
    # with a decay this close to 1 the average has barely left the start, while the trained weights have
    assert moved > 1e-3 and averaged_moved < moved * 1e-3
    assert read_spec(tmp_path / "ema" / "best.safetensors").training["ema_decay"] == 0.999999


def test_resume_with_ema_continues_the_average_exactly(crack_set: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    # the same start and a constant rate, so both runs take the same steps
    recipe = ("--init", str(_untrained_checkpoint(tmp_path)), "--recipe", "paper", "--lr", "5e-3", "--ema", "0.9")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_train_args(crack_set, straight, "--epochs", "2", *recipe)) == 0
    assert main(_train_args(crack_set, split, "--epochs", "1", *recipe)) == 0
    resume = ("--resume", str(split / "last.safetensors"))
    assert main(_train_args(crack_set, split, "--epochs", "2", *recipe, *resume)) == 0
    one, other = load_file(str(straight / "last.safetensors")), load_file(str(split / "last.safetensors"))
    assert all(one[k].allclose(other[k], atol=1e-6) for k in one)


def test_resume_refuses_to_switch_ema_on_or_off(
    crack_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "1", "--ema", "0.9")) == 0
    assert main(_train_args(crack_set, out, "--epochs", "2", "--resume", str(out / "last.safetensors"))) == 1
    assert "give --ema exactly when the interrupted run had it" in capsys.readouterr().err


def test_pretrained_starts_scnet_e0_from_imagenet_and_a_frozen_encoder_stays_there(
    crack_set: Path, tmp_path: Path
) -> None:
    """The spec names the weights by digest; with --freeze-encoder the encoder keeps them, without it they move."""
    from safetensors.torch import load_file

    from crackseg.train.models.pretrained import EFFICIENTNET_LITE0_IMAGENET, load_pretrained_state

    imagenet = load_pretrained_state(EFFICIENTNET_LITE0_IMAGENET)
    key = "_blocks.4._project_conv.weight"
    for freeze, stays in (("1", True), ("0", False)):
        out = tmp_path / f"freeze{freeze}"
        args = _train_args(crack_set, out, "--epochs", "1", "--pretrained", "--freeze-encoder", freeze)
        args[args.index("scnet-t")] = "scnet-e0"
        assert main(args) == 0
        trained = load_file(str(out / "last.safetensors"))
        assert trained[f"encoder.{key}"].equal(imagenet[key]) is stays
    recorded = read_spec(out / "best.safetensors").training
    assert recorded["pretrained"] == EFFICIENTNET_LITE0_IMAGENET.describe()
    assert recorded["pretrained"]["sha256"].startswith("579344248a93e230")


def test_pretrained_on_a_variant_without_an_imagenet_encoder_is_refused(
    crack_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train_args(crack_set, tmp_path / "run", "--epochs", "1", "--pretrained")) == 1
    assert "scnet-t has no pretrained encoder" in capsys.readouterr().err


def test_resume_continues_a_run_saved_before_encoder_groups_existed(crack_set: Path, tmp_path: Path) -> None:
    """Resume states written before ``is_encoder`` marked the optimizer's groups still resume."""
    import torch

    out = tmp_path / "run"
    assert main(_train_args(crack_set, out, "--epochs", "1")) == 0
    state_file = out / "last.state.pt"
    state = torch.load(state_file, weights_only=False)
    for group in state["optimizer"]["param_groups"]:
        del group["is_encoder"]
    torch.save(state, state_file)
    assert main(_train_args(crack_set, out, "--epochs", "2", "--resume", str(out / "last.safetensors"))) == 0
    assert read_spec(out / "last.safetensors").metrics["epoch"] == 2
