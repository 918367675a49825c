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


def _token_shares_error(order: np.ndarray, lengths_by_domain: list[np.ndarray], points: int = 10) -> float:
    """Largest |token share - target share| over the prefixes ending every 1/points of the samples."""
    step = np.empty(len(order))
    for d, lengths in enumerate(lengths_by_domain):
        step[order == d] = lengths
    cum = np.stack([np.cumsum(np.where(order == d, step, 0)) for d in range(len(lengths_by_domain))], axis=1)
    target = cum[-1] / cum[-1].sum()
    ends = np.linspace(len(order) // points, len(order), points).astype(int) - 1
    return float(np.abs(cum[ends] / cum[ends].sum(1, keepdims=True) - target).max())


def test_blending_by_tokens_keeps_every_prefix_within_one_document():
    rng = np.random.default_rng(7)
    for n_domains in (2, 5, 16):
        counts = rng.integers(50, 800, size=n_domains)
        # Domains with very different document lengths, as web pages, forum posts and books have.
        by_domain = [rng.lognormal(np.log(rng.uniform(50, 3000)), 0.8, size=c).round() + 1 for c in counts]
        lengths = np.concatenate(by_domain)
        order = interleave(counts, lengths)
        assert np.bincount(order, minlength=n_domains).tolist() == counts.tolist()
        for d in range(n_domains):  # each domain's samples come out in the order given
            assert (order == d).sum() == counts[d]
        ahead, behind = prefix_deviation(order, counts, lengths)
        assert ahead <= lengths.max()  # never a whole document ahead of its token share
        by_samples = interleave(counts)
        tokens_err, samples_err = _token_shares_error(order, by_domain), _token_shares_error(by_samples, by_domain)
        assert tokens_err < 0.01 and tokens_err < samples_err / 1.5
    assert interleave([2, 1, 1], np.ones(4)).tolist() == interleave([2, 1, 1]).tolist()  # lengths 1: Megatron's rule
