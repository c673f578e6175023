"""Growing a trained network into a wider variant: same output at first, new capacity that trains."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from crackseg.train.models import create_model
from crackseg.train.models.widen import widen_into


def _trained_like(name: str) -> nn.Module:
    """A variant with every weight perturbed, so no tensor keeps its initial zeros or ones."""
    torch.manual_seed(0)
    network = create_model(name)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return network


def _probability(network: nn.Module, image: Tensor) -> Tensor:
    network.eval()
    with torch.no_grad():
        return network(image)


@pytest.mark.parametrize(("trained", "wider"), [("scnet-t", "scnet-t-wide"), ("scnet-t-wide", "scnet-t-wide2")])
def test_the_widened_network_computes_what_the_trained_one_did(trained: str, wider: str) -> None:
    narrow, wide = _trained_like(trained), create_model(wider)
    widen_into(narrow, wide)
    image = torch.rand(2, 3, 96, 128) * 2 - 1
    assert torch.allclose(_probability(wide, image), _probability(narrow, image), atol=1e-4)
    assert sum(p.numel() for p in wide.parameters()) > 1.5 * sum(p.numel() for p in narrow.parameters())


def test_the_new_channels_receive_gradients_and_change_the_output_after_a_step() -> None:
    narrow, wide = _trained_like("scnet-t"), create_model("scnet-t-wide")
    widen_into(narrow, wide)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    before = _probability(wide, image)
    wide.train()
    wide(image).fused.mean().backward()
    # the decoder's first block feeds the finest side output; its last pointwise conv maps 24 -> 24 channels
    # (16 -> 16 in scnet-t), and the weights from its new inputs (16:) into its old outputs (:16) start at zero
    pointwise = wide.decoder.blocks[0].convs[-1].conv_pw
    assert pointwise.weight[:16, 16:].abs().sum() == 0
    assert pointwise.weight.grad is not None and pointwise.weight.grad[:16, 16:].abs().sum() > 0
    torch.optim.SGD(wide.parameters(), lr=0.1).step()
    assert not torch.allclose(_probability(wide, image), before, atol=1e-3)


def test_a_wider_network_does_not_fit_into_a_narrower_one() -> None:
    with pytest.raises(ValueError, match=r"larger than"):
        widen_into(create_model("scnet-t-wide"), create_model("scnet-t"))


def test_another_family_is_refused() -> None:
    with pytest.raises(ValueError, match="not one family"):
        widen_into(create_model("scnet-t"), create_model("cgnet"))


class _ChannelMean(nn.Module):
    """Averages its channels: the output depends on how many there are, so widening changes it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 1)

    def forward(self, image: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(image).mean(dim=1, keepdim=True))


def test_an_architecture_that_mixes_channels_outside_its_convolutions_is_refused() -> None:
    with pytest.raises(ValueError, match="output differs"):
        widen_into(_ChannelMean(2), _ChannelMean(4))
