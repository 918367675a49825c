"""Token budget per domain: weights (given, temperature-scaled, or RegMix), epoch caps, and the shortfall's new home.

Each domain's target is its weight's share of the budget. A domain may be
repeated at most `max_epochs` times (repeated tokens lose value after about
four epochs: Muennighoff et al., 2023), so a target beyond `max_epochs x
its tokens` is cut to that cap, and what it could not supply is shared among
the uncapped domains in proportion to their weights. Sharing can push another
domain over its cap, so this repeats until no cap is passed (water-filling).
If every domain is capped, the mixture is smaller than the budget, and the
report says by how much.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamis.mixers.spec import WeightSpec, check_names


def domain_weights(spec: WeightSpec, names: list[str], tokens: np.ndarray) -> np.ndarray:
    """Normalized weights, one per domain, from the configured kind."""
    if spec.given is not None:
        w = np.array([spec.given[n] for n in names], dtype=np.float64)
    elif spec.alpha is not None:
        w = np.where(tokens > 0, np.power(tokens.astype(np.float64), spec.alpha), 0.0)
    else:
        from tamis.mixers.regmix import read_weights

        given = read_weights(spec.regmix)
        check_names(given, names, f"RegMix weights file {spec.regmix}")
        w = np.array([given[n] for n in names], dtype=np.float64)
    return w / w.sum() if w.sum() > 0 else w


@dataclass
class Allocation:
    """Target tokens per domain after epoch caps, and how the caps moved tokens."""

    requested: np.ndarray  # weight x budget
    target: np.ndarray  # after caps and redistribution
    capped: np.ndarray  # bool: the cap binds
    short: float  # tokens of the budget no domain could supply
    moved: dict[str, Any] = field(default_factory=dict)  # {"from": {domain: tokens}, "to": {domain: tokens}}


def allocate(weights: np.ndarray, tokens: np.ndarray, budget: int, max_epochs: list[float], names: list[str]) -> Allocation:
    weights = np.asarray(weights, dtype=np.float64)
    cap = np.asarray(max_epochs, dtype=np.float64) * np.asarray(tokens, dtype=np.float64)
    requested = weights * budget
    target = requested.copy()
    capped = np.zeros(len(weights), dtype=bool)
    while True:
        over = ~capped & (target > cap)
        if not over.any():
            break
        capped |= over
        target[capped] = cap[capped]
        free = ~capped & (weights > 0)
        left = budget - target[capped].sum()
        if free.any():
            target[free] = weights[free] / weights[free].sum() * left
    short = max(0.0, float(budget - target.sum()))
    delta = target - requested
    moved = {
        "from": {n: round(float(-d)) for n, d, c in zip(names, delta, capped, strict=True) if c and d < 0},
        "to": {n: round(float(d)) for n, d in zip(names, delta, strict=True) if d > 0},
    }
    return Allocation(requested, target, capped, short, moved)
