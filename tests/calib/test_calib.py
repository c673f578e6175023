"""INT8 calibration: ranges, calibration data, Q/DQ graph properties, the accuracy gate and the command.

The fixture model is a random scnet-t whose validation masks are its own FP32 masks at the spec threshold,
so FP32 scores F1 = 1 exactly and any accuracy INT8 loses shows up as a drop.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from crackseg.calib import command
from crackseg.calib.data import (
    CalibrationDataError,
    CalibrationSet,
    build_calibration_set,
    calibration_feeds,
    find_images,
    load_or_build,
)
from crackseg.calib.gate import GateError, GateReport, ImageDrop, check_gate, compare
from crackseg.calib.qdq import (
    CALIBRATION_KEY,
    DEFAULT_KEEP_FP32,
    QuantConfig,
    QuantizationError,
    calibration_info,
    quantize_qdq,
    split_convolutions,
)
from crackseg.calib.ranges import RangeObserver
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends import open_runner
from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.edge.evaluation.evaluate import predict_probability
from crackseg.edge.evaluation.metrics import MetricsReport, mask_f1
from crackseg.export.onnx import TENSORRT_OPS, export_onnx, op_counts, read_onnx

SIZE = 64


# ---------------------------------------------------------------- ranges


def test_max_is_the_largest_magnitude() -> None:
    observer = RangeObserver(bins=128)
    observer.update(np.array([0.5, -3.0, 2.0]))
    observer.update(np.array([[1.0, -2.5]]))
    assert observer.amax("max") == 3.0


def test_histogram_widens_by_merging_bin_pairs() -> None:
    observer = RangeObserver(bins=128)
    observer.update(np.array([0.5, 1.5, 127.9, 128.0]))  # width 128 / 128 = 1: bins 0, 1, 127, 127 (the top)
    assert observer.width == 1.0
    assert observer.hist[[0, 1, 127]].tolist() == [1, 1, 2]
    observer.update(np.array([200.0]))  # past 128: width doubles once, bins (0, 1) -> 0 and (126, 127) -> 63
    assert observer.width == 2.0
    assert observer.hist[[0, 63, 100]].tolist() == [2, 2, 1]
    assert observer.hist.sum() == 5


# 1000 values: 997 in bin 0, 2 in bin 10, 1 at the top (bin 127), width 1: the CDF is 0.997 up to bin 9,
# 0.999 from bin 10 and 1 at bin 127; amax is the upper edge of the first bin whose CDF reaches the percentile.
@pytest.mark.parametrize(("percentile", "amax"), [(99.5, 1.0), (99.8, 11.0), (99.85, 11.0), (100.0, 128.0)])
def test_percentile_is_the_upper_edge_of_the_bin_reaching_it(percentile: float, amax: float) -> None:
    observer = RangeObserver(bins=128)
    observer.update(np.concatenate([np.full(997, 0.5), [10.5, -10.5, 128.0]]))
    assert observer.amax("percentile", percentile) == amax


def test_entropy_clips_a_lone_outlier_but_not_a_uniform_range() -> None:
    rng = np.random.default_rng(0)
    gaussian = RangeObserver()
    gaussian.update(np.append(rng.normal(0.0, 1.0, 100_000), 20.0))
    assert 3.0 < gaussian.amax("entropy") < 5.0  # a few sigma; max would be 20
    uniform = RangeObserver()
    uniform.update(rng.uniform(-1.0, 1.0, 100_000))
    assert uniform.amax("entropy") > 0.95 * uniform.max


def test_all_zero_tensor_and_bad_values() -> None:
    observer = RangeObserver(bins=128)
    observer.update(np.zeros(10))
    assert [observer.amax(method) for method in ("max", "entropy", "percentile")] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="NaN"):
        observer.update(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown calibration method"):
        observer.amax("mse")


# ---------------------------------------------------------------- fixture data and model


class Env(NamedTuple):
    root: Path  # dataset: images/{train,val}, masks/{train,val}
    model: Path  # FP32 scnet-t, dynamic shapes
    spec: ModelSpec


def _crack_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(110, 170, (SIZE, SIZE + 32, 3), dtype=np.uint8)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.line(mask, (int(rng.integers(0, SIZE)), 0), (int(rng.integers(0, SIZE)), SIZE - 1), 255, 2)
    image[mask > 0] = 40
    return image, mask


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[..., ::-1] if image.ndim == 3 else image)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    import torch

    from crackseg.edge.backends.preprocess import pad_to_multiple, to_network_input
    from crackseg.train.models import create_model

    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    for index in range(4):
        image, mask = _crack_image(rng)
        _write(root / f"data/images/train/t{index}.png", image)
        _write(root / f"data/masks/train/t{index}.png", mask)
    val_images = [_crack_image(rng)[0] for _ in range(3)]
    for index, image in enumerate(val_images):
        _write(root / f"data/images/val/v{index}.png", image)

    torch.manual_seed(0)
    network = create_model("scnet-t").eval()
    spec = ModelSpec(arch="scnet-t", threshold=0.5)
    with torch.no_grad():  # centre the fused logit so that about half of the pixels are above 0.5
        probs = [network(torch.from_numpy(pad_to_multiple(to_network_input(i, spec), 32)[0])) for i in val_images]
        logits = torch.logit(torch.cat([p.flatten() for p in probs]).clamp(1e-6, 1 - 1e-6))
        network.head.fuse.bias -= logits.median()
    model = export_onnx(network, spec, root / "fp32.onnx", input_size=(SIZE, SIZE), dynamic=True)
    with open_runner(model) as runner:
        for index, image in enumerate(val_images):
            mask = predict_probability(runner, image) > spec.threshold
            assert 0.1 < mask.mean() < 0.9
            _write(root / f"data/masks/val/v{index}.png", mask.astype(np.uint8) * 255)
    return Env(root / "data", model, spec)


@pytest.fixture(scope="module")
def calibration(env: Env) -> CalibrationSet:
    return build_calibration_set(find_images(env.root, "train"), (SIZE, SIZE), count=6, seed=0, progress=False)


@pytest.fixture(scope="module")
def quantized(env: Env, calibration: CalibrationSet) -> onnx.ModelProto:
    model, spec = read_onnx(env.model)
    feeds = calibration_feeds(calibration, spec)
    return quantize_qdq(model, spec, feeds, QuantConfig(method="max"), {"calibration_sha256": calibration.sha256})


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


# ---------------------------------------------------------------- calibration data


def test_empty_or_missing_calibration_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationDataError, match="no calibration images in"):
        find_images(tmp_path)
    with pytest.raises(CalibrationDataError, match="not found"):
        find_images(tmp_path / "absent")


def test_crops_are_balanced_over_images_and_deterministic(tmp_path: Path) -> None:
    colors = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (100, 110, 120)]
    for index, color in enumerate(colors):
        _write(tmp_path / f"{index}.png", np.full((40, 50, 3), color, np.uint8))
    images = find_images(tmp_path)
    first = build_calibration_set(images, (32, 32), count=8, seed=3, progress=False)
    sources = [tuple(int(v) for v in crop[0, 0]) for crop in first.crops]
    assert sorted(sources) == sorted(colors * 2)  # 8 crops from 4 images: each image twice
    again = build_calibration_set(list(reversed(images)), (32, 32), count=8, seed=3, progress=False)
    assert again.sha256 == first.sha256
    np.testing.assert_array_equal(again.crops, first.crops)
    assert build_calibration_set(images, (32, 32), count=8, seed=4, progress=False).sha256 != first.sha256
    assert build_calibration_set(images, (32, 32), count=7, seed=3, progress=False).sha256 != first.sha256


def test_small_images_are_reflect_padded_at_bottom_and_right(tmp_path: Path) -> None:
    image = np.zeros((3, 4, 3), np.uint8)
    image[..., 0] = [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]
    _write(tmp_path / "small.png", image)
    crop = build_calibration_set([tmp_path / "small.png"], (6, 6), count=1, progress=False).crops[0, ..., 0]
    expected = [
        [0, 1, 2, 3, 2, 1],
        [10, 11, 12, 13, 12, 11],
        [20, 21, 22, 23, 22, 21],
        [10, 11, 12, 13, 12, 11],
        [0, 1, 2, 3, 2, 1],
        [10, 11, 12, 13, 12, 11],
    ]
    assert crop.tolist() == expected


def test_cache_round_trip_reuse_and_tamper_check(env: Env, tmp_path: Path) -> None:
    images = find_images(env.root, "train")
    built, path = load_or_build(images, tmp_path, (SIZE, SIZE), count=3, progress=False)
    assert path.parent == tmp_path and path.suffix == ".npz"
    stamp = path.stat().st_mtime_ns
    loaded, again = load_or_build(images, tmp_path, (SIZE, SIZE), count=3, progress=False)
    assert again == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert loaded.sha256 == built.sha256 and loaded.recipe == built.recipe
    np.testing.assert_array_equal(loaded.crops, built.crops)

    tampered = CalibrationSet(built.crops.copy(), built.recipe, built.sha256)
    tampered.crops[0, 0, 0, 0] ^= 1
    with pytest.raises(CalibrationDataError, match="does not match its recorded hash"):
        CalibrationSet.load(tampered.save(tmp_path / "tampered.npz"))


def test_feeds_are_normalized_as_the_spec_says() -> None:
    crops = np.zeros((2, 32, 32, 3), np.uint8)
    crops[1] = 255
    calibration = CalibrationSet(crops, {}, "")
    feeds = list(calibration_feeds(calibration, ModelSpec(arch="scnet-t")))
    assert [feed["image"].shape for feed in feeds] == [(1, 3, 32, 32)] * 2
    assert feeds[0]["image"].dtype == np.float32
    assert feeds[0]["image"].max() == -1.0 and feeds[1]["image"].min() == 1.0  # (p - 127.5) / 127.5
    with pytest.raises(CalibrationDataError, match="multiple"):
        next(calibration_feeds(CalibrationSet(crops[:, :24, :24], {}, ""), ModelSpec(arch="scnet-t")))


# ---------------------------------------------------------------- Q/DQ graph


def test_qdq_zero_points_are_int8_zero(quantized: onnx.ModelProto) -> None:
    inits = _initializers(quantized)
    qdq = [node for node in quantized.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name


def test_conv_weights_are_per_channel_with_max_over_127_scales(env: Env, quantized: onnx.ModelProto) -> None:
    float_weights = _initializers(onnx.load(str(env.model)))
    inits, producers = _initializers(quantized), _producers(quantized)
    quantized_convs, _ = split_convolutions(quantized, DEFAULT_KEEP_FP32)
    for node in quantized.graph.node:
        if node.name not in quantized_convs:
            continue
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear"
        weight, scale = inits[dq.input[0]], inits[dq.input[1]]
        axis = next(attribute.i for attribute in dq.attribute if attribute.name == "axis")
        assert weight.dtype == np.int8 and axis == 0
        assert scale.shape == (weight.shape[0],)
        original = next(float_weights[name] for name in float_weights if dq.input[0].startswith(name))
        np.testing.assert_allclose(scale, np.abs(original).reshape(len(original), -1).max(axis=1) / 127, rtol=1e-6)


def test_activation_scales_are_scalars_from_the_calibration_max(
    env: Env, calibration: CalibrationSet, quantized: onnx.ModelProto
) -> None:
    inits = _initializers(quantized)
    quantize_nodes = [node for node in quantized.graph.node if node.op_type == "QuantizeLinear"]
    tensors = sorted({node.input[0] for node in quantize_nodes})
    probe = onnx.load(str(env.model))
    del probe.graph.output[:]
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in tensors
    )
    import onnxruntime as ort

    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    seen = np.zeros(len(tensors))
    for feed in calibration_feeds(calibration, env.spec):
        seen = np.maximum(seen, [np.abs(value).max() for value in session.run(tensors, feed)])
    amax = dict(zip(tensors, seen, strict=True))
    for node in quantize_nodes:
        scale = inits[node.input[1]]
        assert scale.shape == ()
        assert scale == pytest.approx(amax[node.input[0]] / 127, rel=1e-6)


def test_excluded_layers_read_float_and_other_nodes_are_untouched(env: Env, quantized: onnx.ModelProto) -> None:
    original = onnx.load(str(env.model))
    quantized_convs, kept = split_convolutions(original, DEFAULT_KEEP_FP32)
    assert len(quantized_convs) == 50 and len(kept) == 33
    assert {"/prior/Conv", "/encoder/blocks.0/convs/convs.0/conv_dw/Conv", "/head/fuse/Conv"} <= set(kept)
    assert "/encoder/blocks.3/attention/gate/Conv" in kept and "/head/sides.2/Conv" in kept
    before = {node.name: list(node.input) for node in original.graph.node}
    producers = _producers(quantized)
    for node in quantized.graph.node:
        if node.name in kept or (node.name in before and node.name not in quantized_convs):
            assert list(node.input) == before[node.name], node.name
            assert all(producers.get(name, node).op_type != "DequantizeLinear" for name in node.input), node.name
        if node.op_type == "DequantizeLinear":  # every DQ feeds quantized convolutions only
            consumers = [n.name for n in quantized.graph.node if node.output[0] in n.input]
            assert consumers and set(consumers) <= set(quantized_convs), node.name


def test_quantized_graph_is_checked_tensorrt_only_and_keeps_the_spec(
    env: Env, calibration: CalibrationSet, quantized: onnx.ModelProto, tmp_path: Path
) -> None:
    onnx.checker.check_model(quantized, full_check=True)
    counts = op_counts(quantized)
    assert set(counts) <= TENSORRT_OPS
    assert counts["QuantizeLinear"] == 50 and counts["DequantizeLinear"] == 100 and counts["Conv"] == 83
    path = tmp_path / "int8.onnx"
    onnx.save(quantized, str(path))
    assert read_onnx(path)[1] == env.spec
    info = calibration_info(quantized)
    assert info is not None and info["method"] == "max" and info["samples"] == len(calibration)
    assert info["calibration_sha256"] == calibration.sha256
    assert info["excluded_nodes"] == split_convolutions(quantized, DEFAULT_KEEP_FP32)[1]
    assert [prop.key for prop in quantized.metadata_props].count(CALIBRATION_KEY) == 1


def test_bad_patterns_and_non_float_models_are_refused(
    env: Env, calibration: CalibrationSet, quantized: onnx.ModelProto
) -> None:
    model, spec = read_onnx(env.model)
    with pytest.raises(QuantizationError, match=r"matches no node .*did you mean"):
        quantize_qdq(model, spec, calibration_feeds(calibration, spec), QuantConfig(keep_fp32=("/encoder/block.1/*",)))
    with pytest.raises(QuantizationError, match="nothing to quantize"):
        quantize_qdq(model, spec, calibration_feeds(calibration, spec), QuantConfig(keep_fp32=("*",)))
    with pytest.raises(QuantizationError, match="only float32"):
        quantize_qdq(quantized, spec, calibration_feeds(calibration, spec))


# ---------------------------------------------------------------- gate


@pytest.mark.parametrize(
    ("predicted", "truth", "f1"),
    [
        ([1, 1, 0, 0], [1, 0, 1, 0], 0.5),  # tp 1, fp 1, fn 1: 2 / (2 + 2)
        ([1, 1, 1, 0], [1, 1, 0, 0], 0.8),  # tp 2, fp 1: 4 / 5
        ([0, 0, 0, 0], [1, 0, 0, 0], 0.0),
        ([0, 0, 0, 0], [0, 0, 0, 0], 1.0),  # nothing to find, nothing found
        ([1, 0, 1, 0], [1, 0, 1, 0], 1.0),
    ],
)
def test_mask_f1_matches_hand_counts(predicted: list[int], truth: list[int], f1: float) -> None:
    assert mask_f1(np.array(predicted, bool), np.array(truth, bool)) == pytest.approx(f1)


def test_image_drop_is_in_points() -> None:
    assert ImageDrop("a", 0.9, 0.85, 0.97).drop_points == pytest.approx(5.0)


def _report(ods_f1: float, f1_at_050: float) -> MetricsReport:
    """Scores whose best F1 is ``ods_f1`` and whose F1 at threshold 0.5 is ``f1_at_050`` (P = R = F1 there)."""
    return MetricsReport(
        "test", ods_f1, 0.3, ods_f1, 0.9, 0.5, 0.5, 0.5, 1, 0, (0.3, 0.5), (ods_f1, f1_at_050), (ods_f1, f1_at_050)
    )


def test_gate_refuses_int8_whose_f1_at_the_shipped_threshold_drops_even_if_ods_holds() -> None:
    report = GateReport(_report(0.86, 0.86), _report(0.86, 0.80), threshold=0.5, budget_points=1.0, worst=())
    assert report.ods_drop_points == 0.0 and report.operating_drop_points == pytest.approx(6.0)
    assert not report.passed
    with pytest.raises(GateError, match=r"F1 at the shipped threshold 0.50 0.8000 vs 0.8600 \(\+6.00 points lost\)"):
        check_gate(report)
    summary = report.to_dict()
    assert summary["int8"]["f1_at_threshold"] == pytest.approx(0.80)
    assert summary["drop_points"]["f1_at_threshold"] == pytest.approx(6.0)


def _break_scales(model: onnx.ModelProto, factor: float = 100.0) -> onnx.ModelProto:
    """Every activation scale times ``factor``: most activations quantize to 0."""
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    scales = {node.input[1] for node in broken.graph.node if node.op_type == "QuantizeLinear"}
    for init in broken.graph.initializer:
        if init.name in scales:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))
    return broken


def test_gate_passes_identical_models_and_refuses_broken_quantization(
    env: Env, quantized: onnx.ModelProto, tmp_path: Path
) -> None:
    held_out = CrackDataset(env.root, "val")
    with open_runner(env.model) as fp32:
        same = compare(fp32, fp32, held_out, progress=False)
        assert same.fp32.ods_f1 == 1.0 and same.ods_drop_points == 0.0 and same.passed
        assert [item.agreement for item in same.worst] == [1.0, 1.0, 1.0]
        check_gate(same)

        broken_path = tmp_path / "broken.onnx"
        onnx.save(_break_scales(quantized), str(broken_path))
        with open_runner(broken_path) as broken:
            report = compare(fp32, broken, held_out, worst=2, progress=False)
    assert report.ods_drop_points > 10.0 and not report.passed
    assert len(report.worst) == 2 and report.worst[0].drop_points >= report.worst[1].drop_points > 0
    with pytest.raises(GateError, match=r"refused: INT8 ODS F1 .* points lost\), budget 1.00; see it"):
        check_gate(report, hint="see it")
    check_gate(report, force=True)
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["passed"] is False and summary["fp32"]["ods_f1"] == 1.0
    assert summary["drop_points"]["ods_f1"] == pytest.approx(100.0 * (1.0 - report.int8.ods_f1))


# ---------------------------------------------------------------- command


def _args(env: Env, tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_args(parser)
    paths = ["--model", str(env.model), "--data", str(env.root), "--cache-dir", str(tmp_path / "cache")]
    paths += ["--out", str(tmp_path / "out" / "m.int8.onnx")]
    splits = ["--calib-split", "train", "--val-split", "val", "--samples", "4", "--size", f"{SIZE}x{SIZE}"]
    return parser.parse_args([*paths, *splits, *extra])


def test_command_writes_a_gated_int8_model_and_report(env: Env, tmp_path: Path) -> None:
    assert command.run(_args(env, tmp_path, "--method", "percentile", "--budget", "100")) == 0
    out = tmp_path / "out" / "m.int8.onnx"
    model, spec = read_onnx(out)
    assert spec == env.spec
    info = calibration_info(model)
    assert info is not None and info["method"] == "percentile" and info["percentile"] == 99.99
    assert info["gate"]["passed"] is True and info["gate"]["forced"] is False and info["gate"]["split"] == "val"
    (cache,) = (tmp_path / "cache").iterdir()
    assert info["calibration_sha256"] == CalibrationSet.load(cache).sha256
    report = json.loads((tmp_path / "out" / "m.int8.gate.json").read_text())
    assert report["gate"]["fp32"]["ods_f1"] == 1.0 and report["calibration"]["samples"] == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.int8.gate.json", "m.int8.onnx"]


def _broken_quantizer(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> onnx.ModelProto:
        return _break_scales(quantize_qdq(*args, **kwargs))

    monkeypatch.setattr(command, "quantize_qdq", broken)


def test_command_refuses_a_model_over_budget_and_force_keeps_it(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _broken_quantizer(monkeypatch)
    with pytest.raises(GateError, match=r"refused: .*--force writes it anyway"):
        command.run(_args(env, tmp_path, "--method", "max"))
    out_dir = tmp_path / "out"
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.int8.gate.json"]  # report only, no model, no temp
    assert json.loads((out_dir / "m.int8.gate.json").read_text())["gate"]["passed"] is False

    assert command.run(_args(env, tmp_path, "--method", "max", "--force")) == 0
    info = calibration_info(onnx.load(str(out_dir / "m.int8.onnx")))
    assert info is not None and info["gate"]["passed"] is False and info["gate"]["forced"] is True


def test_command_refuses_calibrating_on_the_gate_images(env: Env, tmp_path: Path) -> None:
    args = _args(env, tmp_path)
    args.calib_split = "val"
    with pytest.raises(CalibrationDataError, match="also in the gate's split"):
        command.run(args)
