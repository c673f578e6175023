import pytest
import torch
import torch.nn.functional as F

from crackseg.train.layers import MaxUnpool, max_pool_with_selector


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 8, 6), (1, 16, 32, 32)])
def test_unpool_equals_max_unpool_on_random_inputs(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    features = torch.randn(shape)
    pooled, selector = max_pool_with_selector(features)
    reference_pooled, indices = F.max_pool2d(features, 2, return_indices=True)
    values = torch.randn(pooled.shape)  # decoder features, unrelated to the pooled values
    assert torch.equal(pooled, reference_pooled)
    expected = F.max_unpool2d(values, indices, 2, output_size=features.shape[-2:])
    assert torch.equal(MaxUnpool(values.shape[1])(values, selector), expected)


def test_ties_go_to_the_first_maximum_like_max_pool_indices() -> None:
    features = torch.relu(torch.randn(2, 8, 16, 16))  # ReLU makes all-zero windows: four-way ties
    features[0, 0, :2, :2] = 0.0
    pooled, selector = max_pool_with_selector(features)
    _, indices = F.max_pool2d(features, 2, return_indices=True)
    values = torch.randn(pooled.shape)
    expected = F.max_unpool2d(values, indices, 2, output_size=features.shape[-2:])
    assert torch.equal(MaxUnpool(values.shape[1])(values, selector), expected)


def test_selector_is_one_hot_per_window() -> None:
    features = torch.tensor([[[[1.0, 2.0, 0.0, 0.0], [3.0, 0.5, 0.0, 0.0]]]])
    _, selector = max_pool_with_selector(features)
    # window 1 (values 1, 2 / 3, 0.5): maximum 3 at bottom-left; window 2: all zero, first position wins
    assert selector[0, 0, :, 0, 0].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert selector[0, 0, :, 0, 1].tolist() == [1.0, 0.0, 0.0, 0.0]
