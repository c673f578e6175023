"""Grow a trained network into a wider variant of its family without changing what it computes.

Each tensor of the narrow network is copied into the leading block of the wide network's tensor of
the same name, and the weights through which the new input channels would reach the old output
channels are zeroed. The old channels then compute exactly what they did; the new channels start from
their fresh initialization and have no influence on the output. Training therefore starts at the
trained model's accuracy, and the gradients on the zeroed weights (nonzero, since the new channels
are active) bring the new capacity in. This is Net2Net's aim (Chen et al. 2016, "Net2Net: Accelerating
Learning via Knowledge Transfer") with zero-initialized cross connections instead of replicated units,
so no unit starts as a copy of another.

It holds for networks whose only cross-channel operations are convolutions and linear layers (SCNet:
per-channel instance norm, pooling, unpooling and gating). :func:`widen_into` checks it on a random
input and refuses a pair where the output changed.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["widen_into"]

_PROBE_SIDE = 64  # pixels; a multiple of SCNet's size multiple (32)
_TOLERANCE = 1e-4  # largest probability difference taken as "computes the same" (summation order differs)


def widen_into(narrow: nn.Module, wide: nn.Module) -> None:
    """Embeds ``narrow``'s trained tensors into ``wide`` (in place) so both compute the same output.

    Raises:
        ValueError: the two do not have the same tensor names, a tensor of ``narrow`` does not fit in
            ``wide``'s, or the embedded network's output differs from ``narrow``'s.
    """
    narrow_state, wide_state = narrow.state_dict(), wide.state_dict()
    unmatched = sorted(set(narrow_state) ^ set(wide_state))
    if unmatched:
        raise ValueError(f"the networks differ in their layers ({', '.join(unmatched[:3])}): not one family")
    for name, old in narrow_state.items():
        new = wide_state[name]
        if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape, strict=True)):
            raise ValueError(f"{name} is {tuple(old.shape)} in the trained network, larger than {tuple(new.shape)}")
        if new.dim() >= 2:  # (out, in, ...): new inputs must not reach old outputs
            new[: old.shape[0], old.shape[1] :] = 0
        new[tuple(slice(0, size) for size in old.shape)] = old
    wide.load_state_dict(wide_state)
    _check_same_output(narrow, wide)


@torch.no_grad()
def _check_same_output(narrow: nn.Module, wide: nn.Module) -> None:
    modes = narrow.training, wide.training
    narrow.eval(), wide.eval()
    probe = torch.rand(1, 3, _PROBE_SIDE, _PROBE_SIDE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    difference = (narrow(probe) - wide(probe)).abs().max().item()
    narrow.train(modes[0]), wide.train(modes[1])
    if difference > _TOLERANCE:
        raise ValueError(
            f"the widened network's output differs by {difference:.2g}: the architecture mixes channels "
            "outside its convolutions, so widening would not keep what it learned"
        )
