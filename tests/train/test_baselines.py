"""The seed architectures: paper structure and size, export-safe pooling, and user-supplied backbone weights.

Forward/backward, eval output, ONNX export and ONNX Runtime parity are covered for every registered
variant by tests/train/test_models.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from crackseg.train.losses.factory import create_loss
from crackseg.train.models import create_model, describe_model, list_models
from crackseg.train.models.backbones import load_backbone_weights
from crackseg.train.models.cgnet import CGBlock, CGDownBlock, GlobalContext
from crackseg.train.models.hcnn import FeaturePreservingBranches
from crackseg.train.models.pspnet import adaptive_avg_pool

BASELINES = ["cgnet", "deepcrack-liu", "deepcrack-zou", "hcnn", "pspnet"]

# torchvision vgg16: conv (in, out) and its index in `features`; vgg16_bn inserts a BatchNorm after each conv.
VGG16_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
VGG16_CONVS += [(256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
VGG16_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_BN_INDEX = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]


def _count(name: str, **kwargs: object) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kwargs).parameters())


def test_baselines_are_registered_with_a_summary_line() -> None:
    assert set(BASELINES) <= set(list_models())
    assert all(describe_model(name) for name in BASELINES)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_names_its_paper_loss_and_the_loss_fits_its_side_outputs(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    loss = create_loss(model.paper_loss, model.side_weights)
    logits, target = torch.zeros(1, 1, 4, 4), torch.tensor([1.0, 0.0]).repeat(8).view(1, 1, 4, 4)
    value = loss(logits, [logits] * len(model.side_weights), target)
    assert torch.isfinite(value) and value > 0


def test_deepcrack_liu_is_vgg16_plus_hed_side_outputs() -> None:
    # 13 VGG16 convolutions: 14,714,688; side 1x1 convs: 64+128+256+512+512 weights + 5 biases; fusion: 5 weights
    assert _count("deepcrack-liu", norm=False) == 14_714_688 + 1_472 + 5 + 5


def test_deepcrack_zou_is_segnet_plus_skip_layer_fusion() -> None:
    decoder = 3 * 2_359_808  # stage 5: three 512->512 convs
    decoder += 2 * 2_359_808 + 1_179_904  # stage 4: 512->512, 512->512, 512->256
    decoder += 2 * 590_080 + 295_040  # stage 3: 256->256 twice, 256->128
    decoder += 147_584 + 73_792  # stage 2: 128->128, 128->64
    decoder += 2 * 36_928  # stage 1: 64->64 twice
    fusion = (128 + 192 + 384 + 768 + 1024) + 5 + 5  # 1x1 convs on [enc_k, dec_k], then the 5->1 fusion
    assert _count("deepcrack-zou", norm=False) == 14_714_688 + decoder + fusion


def test_cgnet_m3n21_has_the_papers_half_million_parameters() -> None:
    assert abs(_count("cgnet") - 0.5e6) / 0.5e6 <= 0.02
    model = create_model("cgnet")
    assert sum(isinstance(m, CGDownBlock) for m in model.modules()) == 2
    assert sum(isinstance(m, CGBlock) for m in model.modules()) == (3 - 1) + (21 - 1)


def test_cgnet_global_context_rescales_channels_by_a_sigmoid_of_their_means() -> None:
    context = GlobalContext(4, reduction=2)
    torch.nn.init.zeros_(context.fc1.weight)
    torch.nn.init.zeros_(context.fc1.bias)
    torch.nn.init.zeros_(context.fc2.weight)
    with torch.no_grad():
        context.fc2.bias.copy_(torch.tensor([0.0, 100.0, -100.0, 0.0]))
    x = torch.randn(1, 4, 3, 5)
    expected = x * torch.tensor([0.5, 1.0, 0.0, 0.5]).view(1, 4, 1, 1)  # sigmoid(0), sigmoid(+-100)
    assert torch.allclose(context(x), expected, atol=1e-6)


def test_adaptive_pooling_matches_pytorch_where_the_bins_do_not_divide_the_size() -> None:
    # width 8 in 3 bins: windows [0, 3), [2, 6), [5, 8) -> means 1, 3.5, 6
    row = torch.arange(8.0).view(1, 1, 1, 8)
    assert adaptive_avg_pool(row, 3)[0, 0].tolist() == [[1.0, 3.5, 6.0]] * 3  # one row fills every row bin
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 10)
    for bins in (1, 2, 3, 6):
        assert torch.allclose(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins), atol=1e-6)


def test_pspnet_keeps_output_stride_8_and_the_papers_widths() -> None:
    model = create_model("pspnet").eval()
    *_, stage3, stage4 = model.encoder(torch.zeros(1, 3, 64, 96))
    assert stage3.shape[-2:] == stage4.shape[-2:] == (8, 12)
    with torch.device("meta"):
        r50 = create_model("pspnet", backbone="resnet50")
    assert r50.ppm.out_channels == 2048 + 4 * 512  # four pyramid branches of C/4
    assert r50.head.conv.out_channels == 512 and r50.aux_head.conv.in_channels == 1024
    assert model.side_weights == (0.4,)


def test_hcnn_branches_carry_the_finest_features_down_to_the_coarsest_scale() -> None:
    branches = FeaturePreservingBranches((4, 8, 8), width=2, norm=False)
    features = [torch.randn(1, c, 16 // 2**k, 16 // 2**k, requires_grad=True) for k, c in enumerate((4, 8, 8))]
    coarsest = branches(features)[-1]
    assert coarsest.shape == (1, 2, 4, 4)
    coarsest.sum().backward()
    assert features[0].grad is not None and features[0].grad.abs().sum() > 0


def _torchvision_vgg16(batch_norm: bool) -> dict[str, torch.Tensor]:
    """A state dict in torchvision's vgg16 / vgg16_bn layout; each tensor holds its own layer number."""
    state: dict[str, torch.Tensor] = {}
    indices = VGG16_BN_INDEX if batch_norm else VGG16_INDEX
    for layer, ((c_in, c_out), index) in enumerate(zip(VGG16_CONVS, indices, strict=True)):
        state[f"features.{index}.weight"] = torch.full((c_out, c_in, 3, 3), float(layer))
        state[f"features.{index}.bias"] = torch.full((c_out,), float(layer))
        if batch_norm:
            for key in ("weight", "bias", "running_mean", "running_var"):
                state[f"features.{index + 1}.{key}"] = torch.full((c_out,), float(layer) + 0.5)
            state[f"features.{index + 1}.num_batches_tracked"] = torch.tensor(0)
    state["classifier.6.weight"] = torch.zeros(1000, 16)  # the classifier is ignored (shape shortened)
    return state


@pytest.mark.parametrize("batch_norm", [False, True])
def test_user_supplied_torchvision_vgg16_weights_load_into_the_vgg_encoders(tmp_path: Path, batch_norm: bool) -> None:
    path = tmp_path / "vgg16.pth"
    torch.save(_torchvision_vgg16(batch_norm), path)
    model = create_model("deepcrack-liu", norm=batch_norm)
    load_backbone_weights(model, path)
    stages = model.encoder.stages
    assert torch.all(stages[0][0].conv.weight == 0.0) and torch.all(stages[4][2].conv.weight == 12.0)
    assert torch.all(stages[2][1].conv.bias == 5.0)  # conv 3_2 is the sixth convolution
    if batch_norm:
        assert torch.all(stages[1][0].norm.running_var == 2.5)
    zou = create_model("deepcrack-zou", norm=batch_norm)  # the SegNet encoder is VGG16 too
    load_backbone_weights(zou, path)
    assert torch.all(zou.encoder.stages[3][0].conv.weight == 7.0)


def test_a_vgg16_file_without_batch_norm_is_refused_by_a_batch_norm_encoder(tmp_path: Path) -> None:
    path = tmp_path / "vgg16.pth"
    torch.save(_torchvision_vgg16(batch_norm=False), path)
    with pytest.raises(ValueError, match="expected a torchvision vgg16_bn state dict"):
        load_backbone_weights(create_model("hcnn"), path)


def _torchvision_resnet18() -> dict[str, torch.Tensor]:
    """A state dict in torchvision's resnet18 layout (as saved before num_batches_tracked existed)."""
    state: dict[str, torch.Tensor] = {}

    def conv_bn(conv: str, bn: str, c_in: int, c_out: int, k: int) -> None:
        state[f"{conv}.weight"] = torch.full((c_out, c_in, k, k), float(len(state)))
        for key in ("weight", "bias", "running_mean", "running_var"):
            state[f"{bn}.{key}"] = torch.ones(c_out)

    conv_bn("conv1", "bn1", 3, 64, 7)
    c_in = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}."
            conv_bn(f"{prefix}conv1", f"{prefix}bn1", c_in, width, 3)
            conv_bn(f"{prefix}conv2", f"{prefix}bn2", width, width, 3)
            if block == 0 and c_in != width:
                conv_bn(f"{prefix}downsample.0", f"{prefix}downsample.1", c_in, width, 1)
            c_in = width
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    return state


def test_user_supplied_torchvision_resnet18_weights_load_into_pspnet(tmp_path: Path) -> None:
    state = _torchvision_resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = create_model("pspnet")
    load_backbone_weights(model, path)
    encoder = model.encoder
    assert torch.equal(encoder.conv1.weight, state["conv1.weight"])
    # stage 3 runs at stride 1 with dilation, but its projection shortcut keeps torchvision's shape
    assert torch.equal(encoder.layer3[0].downsample[0].weight, state["layer3.0.downsample.0.weight"])
    assert torch.equal(encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])

    state["layer1.2.conv1.weight"] = torch.zeros(64, 64, 3, 3)  # a deeper ResNet's extra block
    torch.save(state, path)
    fresh = create_model("pspnet")
    before = fresh.encoder.conv1.weight.clone()
    with pytest.raises(ValueError, match=r"unexpected \['layer1.2.conv1.weight'\]"):
        load_backbone_weights(fresh, path)
    assert torch.equal(fresh.encoder.conv1.weight, before)  # a file that does not fit changes nothing


def test_backbone_weights_need_a_model_with_a_backbone_and_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="backbone weights file not found"):
        load_backbone_weights(create_model("pspnet"), tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="CGNet has no ImageNet backbone"):
        load_backbone_weights(create_model("cgnet"), tmp_path / "missing.pth")


def test_unknown_backbone_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown ResNet 'resnet9'"):
        create_model("pspnet", backbone="resnet9")
