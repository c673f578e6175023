"""Frame preparation as the model spec says: normalization and padding to the size multiple."""

import numpy as np

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.preprocess import crop_to, normalize, pad_to_multiple, to_network_input

# --- model input --------------------------------------------------------------------------------------------


def test_normalize_maps_rgb_to_minus_one_one_in_chw() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 1], image[..., 2] = 51, 255
    out = normalize(image, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5))
    assert out.dtype == np.float32 and out.shape == (3, 2, 3) and out.flags.c_contiguous
    np.testing.assert_allclose(out[:, 0, 0], [-1.0, -0.6, 1.0], atol=1e-6)  # (51 - 127.5) / 127.5 = -0.6


def test_normalize_uses_per_channel_statistics() -> None:
    image = np.full((1, 1, 3), 20, dtype=np.uint8)
    out = normalize(image, (0.0, 10.0, 20.0), (1.0, 2.0, 4.0))
    np.testing.assert_allclose(out[:, 0, 0], [20.0, 5.0, 0.0])


def test_pad_to_multiple_reflects_at_bottom_and_right() -> None:
    array = np.arange(15).reshape(3, 5)
    padded, size = pad_to_multiple(array, 4)
    assert size == (3, 5) and padded.shape == (4, 8)
    np.testing.assert_array_equal(padded[:3, :5], array)
    np.testing.assert_array_equal(padded[3, :5], array[1])  # row 3 mirrors row 1 about row 2
    np.testing.assert_array_equal(padded[:3, 5:], array[:, [3, 2, 1]])


def test_pad_to_multiple_pads_only_the_last_two_axes() -> None:
    chw = np.zeros((3, 30, 33), dtype=np.float32)
    padded, size = pad_to_multiple(chw, 32)
    assert padded.shape == (3, 32, 64) and size == (30, 33)
    fitting = np.zeros((3, 32, 64), dtype=np.float32)
    assert pad_to_multiple(fitting, 32)[0] is fitting


def test_network_input_is_a_normalized_batch_and_crop_undoes_padding() -> None:
    image = np.full((30, 33, 3), 255, dtype=np.uint8)
    batch = to_network_input(image, ModelSpec(arch="scnet-t"))
    assert batch.shape == (1, 3, 30, 33) and np.all(batch == 1.0)
    padded, (height, width) = pad_to_multiple(batch, 32)
    assert crop_to(padded, height, width).shape == (1, 3, 30, 33)
