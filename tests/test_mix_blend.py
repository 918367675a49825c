"""The blend order keeps every prefix of the mixture at the target shares (Megatron's largest-shortfall rule)."""

import numpy as np
import pytest

from tamis.mixers.blend import interleave, prefix_deviation


def _deviations(order: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """count_d(prefix) - w_d * len(prefix), for every prefix and domain, computed independently of the module."""
    n = np.arange(1, len(order) + 1)[:, None]
    taken = np.cumsum(order[:, None] == np.arange(len(counts))[None, :], axis=0)
    return taken - n * (counts / counts.sum())[None, :]


def test_megatron_rule_on_a_small_case():
    # w = (0.5, 0.25, 0.25): position 0 picks the largest weight, then the largest shortfall, first on ties.
    assert interleave([2, 1, 1]).tolist() == [0, 1, 2, 0]
    assert interleave([0, 3, 0]).tolist() == [1, 1, 1]  # an empty domain never appears, even on a tie at zero
    assert interleave([]).tolist() == []


def test_two_domains_are_never_more_than_one_sample_off_in_any_prefix():
    rng = np.random.default_rng(0)
    for _ in range(300):
        counts = rng.integers(1, 2000, size=2)
        order = interleave(counts)
        assert np.bincount(order, minlength=2).tolist() == counts.tolist()
        dev = _deviations(order, counts)
        assert dev.max() <= 1 + 1e-9, counts  # never ahead by more than one sample
        assert -dev.min() <= 1 + 1e-9, counts  # nor behind by more than one


@pytest.mark.parametrize("n_domains", [3, 5, 8, 16, 32])
def test_up_to_32_domains_stay_within_two_samples(n_domains):
    rng = np.random.default_rng(n_domains)
    for trial in range(60):
        if trial % 2:  # skewed, as real mixtures are
            counts = (rng.dirichlet(np.full(n_domains, 0.3)) * 4000).astype(np.int64) + 1
        else:
            counts = rng.integers(1, 500, size=n_domains)
        order = interleave(counts)
        assert np.bincount(order, minlength=n_domains).tolist() == counts.tolist()
        dev = _deviations(order, counts)
        assert dev.max() <= 1 + 1e-9  # no domain ever more than one sample ahead of its share
        assert -dev.min() < 2  # and never two behind
        ahead, behind = prefix_deviation(order, counts)
        assert ahead == pytest.approx(dev.max()) and behind == pytest.approx(-dev.min())
