"""Round-trip error bounds of the vector codecs kept for rescoring (Hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tamis.indexes import quantize

DIMS = st.integers(1, 48)
unit_rows = st.builds(
    lambda n, d, seed: _unit(np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)),
    st.integers(1, 40), DIMS, st.integers(0, 2**32 - 1),
)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


@settings(max_examples=60, deadline=None)
@given(unit_rows)
def test_int8_error_is_at_most_half_a_step_per_dimension_inside_the_sample_range(x):
    scale = quantize.int8_scale(x)
    back = quantize.from_int8(quantize.to_int8(x, scale), scale)
    assert np.all(np.abs(back - x) <= scale / 2 + 1e-6)
    # so inner products with a unit query move by at most |q| * |scale / 2| <= ||scale|| / 2
    q = _unit(np.ones((1, x.shape[1]), np.float32))[0]
    assert np.all(np.abs(back @ q - x @ q) <= np.linalg.norm(scale) / 2 + 1e-5)


@settings(max_examples=60, deadline=None)
@given(unit_rows, st.floats(1.5, 10))
def test_int8_clips_values_beyond_the_sample_range_to_the_extreme_code(x, factor):
    scale = quantize.int8_scale(x)
    codes = quantize.to_int8(x * factor, scale)
    assert codes.dtype == np.int8 and codes.min() >= -127 and codes.max() <= 127


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 20), DIMS), elements=st.floats(-1, 1, width=32)))
def test_float16_keeps_11_significant_bits(x):
    back = quantize.to_float16(x).astype(np.float32)
    assert np.all(np.abs(back - x) <= np.maximum(np.abs(x) * 2.0**-11, 2.0**-25))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 20), DIMS), elements=st.floats(-1, 1, width=32)))
def test_sign_bits_round_trip_the_sign_of_every_dimension(x):
    bits = quantize.to_bits(x)
    assert bits.shape == (x.shape[0], (x.shape[1] + 7) // 8)
    np.testing.assert_array_equal(quantize.from_bits(bits, x.shape[1]), np.where(x > 0, 1.0, -1.0))


def test_a_dimension_that_is_always_zero_gets_scale_one():
    x = np.array([[0.5, 0.0], [-0.25, 0.0]], np.float32)
    np.testing.assert_allclose(quantize.int8_scale(x), [0.5 / 127, 1.0])
