"""Behaviour every registered variant shares (smp BaseModelTester style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from crackseg.edge.artifact.spec import IMAGENET, SYMMETRIC, ModelSpec, VariantConfig
from crackseg.export.onnx import TENSORRT_OPS, export_onnx, op_counts
from crackseg.train.layers import HEDPrior
from crackseg.train.models import SCNet, create_model, create_spec, list_models
from crackseg.train.models.base import ModelOutput

VARIANTS = list_models()


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> tuple[str, SCNet]:
    torch.manual_seed(0)
    return request.param, create_model(request.param)


def test_registry_lists_the_scnet_family() -> None:
    assert {"scnet", "scnet-l4", "scnet-s", "scnet-t"} <= set(VARIANTS)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("scnet-t", SYMMETRIC),
        ("cgnet", SYMMETRIC),
        ("deepcrack-liu", IMAGENET),
        ("hcnn", IMAGENET),
        ("pspnet", IMAGENET),
    ],
)
def test_a_spec_takes_the_variants_own_config_and_the_networks_size_multiple(name: str, config: VariantConfig) -> None:
    network = create_model(name)
    spec = create_spec(name, network, threshold=0.3)
    own = (spec.pixel_mean, spec.pixel_std, spec.input_size)
    assert own == (config.pixel_mean, config.pixel_std, config.input_size)
    assert (spec.arch, spec.size_multiple, spec.threshold) == (name, network.size_multiple, 0.3)


def test_unknown_model_name_suggests_a_close_match() -> None:
    with pytest.raises(ValueError, match="did you mean 'scnet-t'"):
        create_model("scnet_t")


@pytest.mark.parametrize(("name", "paper_params"), [("scnet", 29.46e6), ("scnet-l4", 15.30e6)])
def test_parameter_count_matches_the_paper(name: str, paper_params: float) -> None:
    params = sum(p.numel() for p in create_model(name).parameters())
    assert abs(params - paper_params) / paper_params <= 0.03


@pytest.mark.parametrize(
    ("name", "max_params"),
    [("scnet-t", 1.0e6), ("scnet-t-wide", 2.0e6), ("scnet-t-wide2", 2.0e6), ("scnet-e0", 2.0e6), ("fpn-e0", 2.0e6)],
)
def test_light_variants_meet_the_jetson_budget(name: str, max_params: float) -> None:
    """Light variants stay within 15 GFLOPs at 512², so they train on a CPU and run on a Jetson."""
    from crackseg.train.commands.models import model_summary

    summary = model_summary(name)
    assert summary.params <= max_params
    assert summary.gflops_512 <= 15.0


def test_training_mode_returns_fused_and_side_logits_that_backpropagate(variant: tuple[str, SCNet]) -> None:
    _, model = variant
    model.train()
    image = torch.rand(2, 3, 64, 96) * 2 - 1
    output = model(image)
    assert isinstance(output, ModelOutput)
    assert output.fused.shape == (2, 1, 64, 96)
    assert [s.shape for s in output.sides] == [(2, 1, 64, 96)] * len(model.side_weights)
    (output.fused.mean() + sum(s.mean() for s in output.sides)).backward()
    first_conv = next(p for p in model.encoder.parameters() if p.requires_grad)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_eval_mode_returns_one_probability_map(variant: tuple[str, SCNet]) -> None:
    _, model = variant
    with torch.no_grad():
        prob = model.eval()(torch.rand(1, 3, 96, 64) * 2 - 1)
    assert prob.shape == (1, 1, 96, 64)
    assert prob.min() >= 0.0 and prob.max() <= 1.0


@pytest.mark.parametrize(
    ("shape", "problem"), [((1, 4, 64, 64), "channels"), ((1, 3, 64, 70), "width"), ((3, 64, 64), "rank")]
)
def test_bad_input_raises_a_value_error_naming_the_expected_shape(shape: tuple[int, ...], problem: str) -> None:
    model = create_model("scnet-t").eval()
    with pytest.raises(ValueError, match=r"expected an RGB batch of shape \(N, 3, H, W\) with H and W multiples of 32"):
        model(torch.zeros(shape))


def test_onnx_export_uses_plain_ops_and_matches_pytorch(variant: tuple[str, SCNet], tmp_path: Path) -> None:
    import onnxruntime as ort

    name, model = variant
    path = export_onnx(model, ModelSpec(arch=name), tmp_path / f"{name}.onnx", input_size=(64, 64), dynamic=True)
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    ops = set(op_counts(graph))
    assert "MaxUnpool" not in ops and ops <= TENSORRT_OPS
    assert all(node.domain in ("", "ai.onnx") for node in graph.graph.node)  # no custom ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    for shape in [(1, 3, 64, 64), (2, 3, 96, 128)]:  # dynamic batch and size
        image = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            expected = model.eval()(image).numpy()
        (actual,) = session.run(["prob"], {"image": image.numpy()})
        assert np.abs(actual - expected).max() <= 1e-4


@pytest.mark.parametrize("name", ["scnet-e0", "fpn-e0"])
def test_the_pretrained_trunk_variants_export_with_batch_norm_folded_and_no_transposed_convolution(
    name: str, tmp_path: Path
) -> None:
    """Trained BatchNorm statistics end up inside the convolutions: the graph has none of the slow ops."""
    torch.manual_seed(2)
    model = create_model(name).eval()
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):  # statistics as training leaves them, not the identity
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(layer.weight, 0.5, 1.5)
            torch.nn.init.uniform_(layer.bias, -0.2, 0.2)
    path = export_onnx(model, create_spec(name, model), tmp_path / f"{name}.onnx", input_size=(64, 64), dynamic=True)
    ops = set(op_counts(onnx.load(str(path))))
    assert not ops & {"BatchNormalization", "InstanceNormalization", "ConvTranspose"}
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, 96, 128) * 2 - 1
    with torch.no_grad():
        expected = model(image).numpy()
    (actual,) = session.run(["prob"], {"image": image.numpy()})
    assert np.abs(actual - expected).max() <= 1e-4


def test_hed_prior_loads_a_user_supplied_weights_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "hed.pth"
    torch.save(create_model("scnet-t").state_dict(), tmp_path / "not_hed.pth")  # a real state dict, but not HED's
    with pytest.raises(ValueError, match="is not a HED state dict"):
        HEDPrior(tmp_path / "not_hed.pth")
    hed_state = _random_hed_state()  # PyTorch-HED layout, saved with the older "module" key prefix
    torch.save({k.replace("net", "module", 1): v for k, v in hed_state.items()}, weights)
    prior = HEDPrior(weights)
    assert torch.equal(prior.netScoreOne.weight, hed_state["netScoreOne.weight"])
    assert not any(p.requires_grad for p in prior.parameters())
    model = create_model("scnet-t", prior="hed", hed_weights=str(weights)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)


def _random_hed_state() -> dict[str, torch.Tensor]:
    shapes = {
        "netVggOne": [(64, 3), (64, 64)],
        "netVggTwo": [(128, 64), (128, 128)],
        "netVggThr": [(256, 128), (256, 256), (256, 256)],
        "netVggFou": [(512, 256), (512, 512), (512, 512)],
        "netVggFiv": [(512, 512)] * 3,
    }
    state: dict[str, torch.Tensor] = {}
    for stage, convs in shapes.items():
        first = 0 if stage == "netVggOne" else 1  # later stages start with a MaxPool
        for index, (out_c, in_c) in enumerate(convs):
            state[f"{stage}.{first + 2 * index}.weight"] = torch.randn(out_c, in_c, 3, 3) * 0.01
            state[f"{stage}.{first + 2 * index}.bias"] = torch.zeros(out_c)
    for name, in_c in [("One", 64), ("Two", 128), ("Thr", 256), ("Fou", 512), ("Fiv", 512)]:
        state[f"netScore{name}.weight"] = torch.randn(1, in_c, 1, 1)
        state[f"netScore{name}.bias"] = torch.zeros(1)
    state["netCombine.0.weight"] = torch.full((1, 5, 1, 1), 0.2)
    state["netCombine.0.bias"] = torch.zeros(1)
    return state
