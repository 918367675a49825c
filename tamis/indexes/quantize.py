"""Vector codecs kept beside a FAISS index for rescoring: float16, int8 (symmetric, per dimension) and sign bits.

- float16: unit vectors lose at most 2^-11 relative per component (fp16 has an
  11-bit significand), so inner products move by < 1e-3;
- int8: x ≈ code × scale, scale[j] = max |x[:, j]| / 127 over a training
  sample, codes clipped to [-127, 127]; inside the sample's range the error
  per component is at most scale[j] / 2;
- bits: one sign bit per dimension (x > 0), packed 8 per byte, the input of
  FAISS binary indexes (Hamming distance).
"""

import numpy as np

from tamis.errors import InputError


def to_float16(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float16)


def int8_scale(sample: np.ndarray) -> np.ndarray:
    """Per-dimension scale from a sample (n, d); a dimension that is all zero gets scale 1."""
    if sample.ndim != 2 or len(sample) == 0:
        raise InputError("An int8 scale needs a non-empty (n, d) sample.")
    peak = np.abs(np.asarray(sample, dtype=np.float32)).max(axis=0)
    return np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)


def to_int8(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) / scale), -127, 127).astype(np.int8)


def from_int8(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scale


def to_bits(x: np.ndarray) -> np.ndarray:
    """(n, d) floats -> (n, ceil(d / 8)) uint8 sign bits, big-endian within a byte (numpy's packbits)."""
    return np.packbits(np.asarray(x) > 0, axis=1)


def from_bits(bits: np.ndarray, d: int) -> np.ndarray:
    """Sign bits back to ±1 floats (for tests and for asymmetric scoring)."""
    return np.unpackbits(bits, axis=1, count=d).astype(np.float32) * 2 - 1
