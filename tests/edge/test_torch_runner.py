"""The PyTorch runner's speed-ups give the eager model's output (GPU ones where a GPU is present)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from crackseg.edge.artifact.spec import ModelSpec  # noqa: E402
from crackseg.edge.backends.base import BackendError  # noqa: E402
from crackseg.edge.backends.pytorch import TorchRunner  # noqa: E402
from crackseg.train.models import create_model  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and FP16 need an NVIDIA GPU")


def _probabilities(device: str, batch: np.ndarray, **options: Any) -> np.ndarray:
    torch.manual_seed(0)
    network = create_model("scnet-t")
    with TorchRunner((network, ModelSpec(arch="scnet-t")), device=device, **options) as runner:
        runner.infer(batch)  # first call: capture or compile
        return runner.infer(batch)


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)


def test_channels_last_gives_the_eager_output(batch: np.ndarray) -> None:
    eager = _probabilities("cpu", batch)
    assert np.abs(_probabilities("cpu", batch, channels_last=True) - eager).max() < 1e-4


def test_gpu_only_options_are_refused_on_the_cpu_with_a_reason(batch: np.ndarray) -> None:
    with pytest.raises(BackendError, match="need a CUDA device"):
        _probabilities("cpu", batch, cuda_graph=True)
    with pytest.raises(BackendError, match="not both"):
        TorchRunner("m.safetensors", cuda_graph=True, compile_mode="reduce-overhead")


@needs_cuda
def test_a_replayed_cuda_graph_gives_the_eager_output_for_each_shape(batch: np.ndarray) -> None:
    eager = _probabilities("cuda", batch)
    torch.manual_seed(0)
    with TorchRunner((create_model("scnet-t"), ModelSpec(arch="scnet-t")), device="cuda", cuda_graph=True) as runner:
        first = runner.infer(batch)
        wider = np.concatenate([batch, batch], axis=3)
        assert runner.infer(wider).shape == (1, 1, 64, 192)  # a second shape gets its own graph
        again = runner.infer(batch)
    assert np.abs(first - eager).max() < 1e-3
    assert np.array_equal(first, again)  # outputs are copies: the second shape did not overwrite them


@needs_cuda
@pytest.mark.parametrize("options", [{"half": True}, {"half": True, "channels_last": True, "cuda_graph": True}])
def test_fp16_paths_stay_close_to_fp32(batch: np.ndarray, options: dict[str, Any]) -> None:
    eager = _probabilities("cuda", batch)
    assert np.abs(_probabilities("cuda", batch, **options) - eager).max() < 2e-2


def test_masks_on_the_cpu_are_the_thresholded_probabilities(batch: np.ndarray) -> None:
    torch.manual_seed(0)
    with TorchRunner((create_model("scnet-t"), ModelSpec(arch="scnet-t")), device="cpu") as runner:
        assert not runner.thresholds_on_device
        prob = runner.infer(batch)
        threshold = float(np.median(prob))  # about half the pixels on each side
        mask = runner.infer_mask(batch, threshold)
    assert mask.dtype == np.bool_ and mask.shape == prob.shape
    assert np.array_equal(mask, prob > threshold)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="binarization on the GPU needs an NVIDIA GPU")
@pytest.mark.parametrize("options", [{}, {"half": True}, {"channels_last": True, "cuda_graph": True}])
def test_cuda_masks_are_made_on_the_device_and_equal_host_thresholding(
    batch: np.ndarray, options: dict[str, Any]
) -> None:
    torch.manual_seed(0)
    with TorchRunner((create_model("scnet-t"), ModelSpec(arch="scnet-t")), device="cuda", **options) as runner:
        assert runner.thresholds_on_device
        prob = runner.infer(batch)
        threshold = float(np.median(prob))
        mask = runner.infer_mask(batch, threshold)
        assert np.array_equal(runner.infer_mask(batch, threshold), mask)  # deterministic (a replayed graph too)
    assert mask.dtype == np.bool_ and mask.shape == prob.shape
    assert np.array_equal(mask, prob > threshold)  # float32 on both sides: exactly the host's mask
