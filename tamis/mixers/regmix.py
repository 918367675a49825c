"""RegMix (Liu et al., 2024): regress a validation loss on the mixture weights of small proxy runs, then search.

Fit: one regressor from the domain weights of many small training runs to one
validation loss. Search: draw many candidate mixtures from a Dirichlet around
the token distribution, predict their loss, and average the best few; the
average is the mixture to train the large model on.

Two regressors:
- `gp` (default): a Gaussian process with an ARD Matérn-5/2 kernel plus white
  noise on log(weight + eps) features, its kernel fitted by maximum marginal
  likelihood on the fit set alone. Out-of-fold on the 512 1M-parameter runs it
  ranks Pile-CC loss better than the paper's LightGBM (docs/mixing.md); the log
  reflects that loss falls roughly with the log of a domain's share, and
  a small share already matters.
- `lightgbm`: the paper's regressor, with hyper-parameters chosen by 5-fold
  cross-validation on the same 512 runs (not by early stopping on a test set).

A model is a folder: `model.json` (GP: every array the prediction needs) or
`model.txt` (LightGBM's own text format), and a `manifest.json` with the
sha256 of every file, the feature columns, the target, the parameters and the
mean training mixture (the default prior for search). Nothing is pickled;
prediction from a loaded GP is plain numpy.
"""

import csv
import json
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tamis.errors import ConfigError, InputError, IntegrityError, ResourceError
from tamis.io import atomic, manifest
from tamis.validation import Params

log = logging.getLogger(__name__)

KIND = "regmix_model"
FORMAT_VERSION = 1
WEIGHTS_KIND = "regmix_weights"
WEIGHTS_VERSION = 1
_FILES = {"gp": "model.json", "lightgbm": "model.txt"}
Regressor = Literal["gp", "lightgbm"]


class GPParams(Params):
    eps: float = 1e-3  # features are log(weight + eps): chosen by 5-fold CV on the 512 1M runs
    nu: float = 2.5  # Matérn smoothness: 0.5, 1.5, 2.5, or inf (RBF)
    restarts: int = 0  # extra optimizer starts for the kernel's hyper-parameters
    seed: int = 0

    def check(self) -> None:
        if self.eps <= 0:
            raise ConfigError(f"The 'eps' parameter of gp must be > 0. Got {self.eps} instead.")
        if self.nu not in (0.5, 1.5, 2.5, math.inf):
            raise ConfigError(f"The 'nu' parameter of gp must be one of 0.5, 1.5, 2.5, inf. Got {self.nu} instead.")


class LightGBMParams(Params):
    """Defaults chosen by 5-fold CV (out-of-fold Spearman) on the 512 1M-parameter runs; see docs/mixing.md."""

    n_estimators: int = 4000
    learning_rate: float = 0.01
    num_leaves: int = 5
    min_child_samples: int = 10
    seed: int = 42

    def check(self) -> None:
        for name in ("n_estimators", "num_leaves", "min_child_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The {name!r} parameter of lightgbm must be >= 1. Got {getattr(self, name)} instead.")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"The 'learning_rate' parameter of lightgbm must be in (0, 1]. Got {self.learning_rate}.")


PARAMS = {"gp": GPParams, "lightgbm": LightGBMParams}


# --- data ---------------------------------------------------------------------------------------------------------


@dataclass
class Runs:
    """Proxy runs joined on their index: mixture weights X (runs x domains) and one loss y per run."""

    index: list[str]
    features: list[str]
    X: np.ndarray
    y: np.ndarray | None
    target: str | None


def _read_csv(path: str, what: str) -> tuple[list[str], list[list[str]]]:
    if not atomic.exists(path):
        raise InputError(f"{what} file {path} does not exist.")
    with atomic.open_read(path) as raw:
        rows = list(csv.reader(raw.read().decode("utf-8").splitlines()))
    if len(rows) < 2:
        raise InputError(f"{what} file {path} has no runs (a header and at least one row are needed).")
    return rows[0], rows[1:]


def _floats(rows: list[list[str]], col: int, path: str, name: str) -> np.ndarray:
    try:
        out = np.array([float(r[col]) for r in rows], dtype=np.float64)
    except (ValueError, IndexError) as e:
        raise InputError(f"{path}: column {name!r} has a value that is not a number ({e}).") from e
    if not np.isfinite(out).all():
        raise InputError(f"{path}: column {name!r} has a missing or infinite value.")
    return out


def read_runs(mixtures: str, losses: str | None = None, target: str | None = None,
              features: list[str] | None = None, index_column: str = "index") -> Runs:
    """Mixture weights (every column but the index, or `features`) and, with `losses`, the target loss per run."""
    header, rows = _read_csv(mixtures, "Mixtures")
    has_index = index_column in header
    index = [r[header.index(index_column)] for r in rows] if has_index else [str(i) for i in range(len(rows))]
    if len(set(index)) != len(index):
        raise InputError(f"{mixtures}: the {index_column!r} column repeats a run.")
    names = features if features is not None else [h for h in header if h != index_column]
    missing = [f for f in names if f not in header]
    if missing:
        raise InputError(f"{mixtures} lacks the model's feature columns {missing}.")
    X = np.stack([_floats(rows, header.index(f), mixtures, f) for f in names], axis=1)
    if (X < 0).any():
        raise InputError(f"{mixtures} has a negative mixture weight.")
    y = None
    if losses is not None:
        lheader, lrows = _read_csv(losses, "Losses")
        if target not in lheader:
            raise InputError(f"{losses} has no column {target!r}.",
                             hint=f"columns: {', '.join(h for h in lheader if h != index_column)}")
        if has_index != (index_column in lheader):
            raise InputError(f"Only one of {mixtures} and {losses} has an {index_column!r} column to join on.")
        lindex = [r[lheader.index(index_column)] for r in lrows] if has_index else [str(i) for i in range(len(lrows))]
        if sorted(lindex) != sorted(index):
            raise InputError(f"{mixtures} and {losses} do not hold the same runs ({len(index)} vs {len(lindex)}).")
        by_run = dict(zip(lindex, _floats(lrows, lheader.index(target), losses, target), strict=True))
        y = np.array([by_run[i] for i in index])
    return Runs(index, names, X, y, target)


# --- regressors ---------------------------------------------------------------------------------------------------


def _matern(r: np.ndarray, nu: float) -> np.ndarray:
    if nu == 0.5:
        return np.exp(-r)
    if nu == 1.5:
        s = math.sqrt(3) * r
        return (1 + s) * np.exp(-s)
    if nu == 2.5:
        s = math.sqrt(5) * r
        return (1 + s + s * s / 3) * np.exp(-s)
    return np.exp(-0.5 * r * r)


class GPModel:
    """A fitted Gaussian process, reduced to what prediction needs: plain arrays, saved as JSON."""

    def __init__(self, state: dict[str, Any]):
        self.state = state
        self._arrays = {k: np.asarray(v, dtype=np.float64) for k, v in state.items() if isinstance(v, list)}

    def _features(self, X: np.ndarray) -> np.ndarray:
        a = self._arrays
        return (np.log(X + self.state["eps"]) - a["mean"]) / a["scale"] / a["length_scale"]

    def predict(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        a = self._arrays
        Z = self._features(np.asarray(X, dtype=np.float64))
        T = a["train"]
        out = np.empty(len(Z))
        for start in range(0, len(Z), chunk):
            z = Z[start : start + chunk]
            sq = (z * z).sum(1)[:, None] + (T * T).sum(1)[None, :] - 2 * z @ T.T
            k = self.state["constant"] * _matern(np.sqrt(np.maximum(sq, 0)), self.state["nu"])
            out[start : start + chunk] = k @ a["alpha"]
        return out * self.state["y_std"] + self.state["y_mean"]

    def to_bytes(self) -> bytes:
        return json.dumps(self.state, sort_keys=True).encode()

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, p: GPParams) -> "GPModel":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

        Z = np.log(X + p.eps)
        mean, scale = Z.mean(0), Z.std(0)
        scale[scale == 0] = 1.0
        Z = (Z - mean) / scale
        d = X.shape[1]
        shape = RBF(np.ones(d)) if p.nu == math.inf else Matern(np.ones(d), nu=p.nu)
        kernel = ConstantKernel() * shape + WhiteKernel(1e-2)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=p.restarts, random_state=p.seed)
        with warnings.catch_warnings():  # a length scale at its upper bound is a domain that does not matter
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(Z, y)
        k = gp.kernel_
        length = np.broadcast_to(np.asarray(k.k1.k2.length_scale, dtype=np.float64), (d,))
        state = {
            "eps": p.eps, "nu": p.nu, "mean": mean.tolist(), "scale": scale.tolist(),
            "length_scale": length.tolist(), "constant": float(k.k1.k1.constant_value),
            "noise": float(k.k2.noise_level), "train": (Z / length).tolist(), "alpha": gp.alpha_.ravel().tolist(),
            "y_mean": float(np.ravel(gp._y_train_mean)[0]), "y_std": float(np.ravel(gp._y_train_std)[0]),
            "log_marginal_likelihood": float(gp.log_marginal_likelihood_value_),
        }
        model = cls(state)
        got, want = model.predict(X), gp.predict(Z)
        if not np.allclose(got, want, rtol=1e-6, atol=1e-6):  # the saved form must predict what sklearn does
            raise IntegrityError("the reduced Gaussian process does not reproduce scikit-learn's predictions")
        return model


def _lightgbm():
    try:
        import lightgbm
    except ImportError as e:
        raise ResourceError("the lightgbm regressor needs the lightgbm package", hint="pip install lightgbm") from e
    return lightgbm


class LightGBMModel:
    """A LightGBM booster, saved in LightGBM's own text format."""

    def __init__(self, text: str):
        self.text = text
        self.booster = _lightgbm().Booster(model_str=text)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(np.asarray(X, dtype=np.float64))

    def to_bytes(self) -> bytes:
        return self.text.encode()

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, p: LightGBMParams) -> "LightGBMModel":
        lgb = _lightgbm()
        reg = lgb.LGBMRegressor(objective="regression", n_estimators=p.n_estimators, learning_rate=p.learning_rate,
                                num_leaves=p.num_leaves, min_child_samples=p.min_child_samples, random_state=p.seed,
                                n_jobs=1, verbosity=-1)
        reg.fit(X, y)
        return cls(reg.booster_.model_to_string())


_MODELS = {"gp": GPModel, "lightgbm": LightGBMModel}


def fit(X: np.ndarray, y: np.ndarray, regressor: Regressor = "gp", params: Params | None = None):
    params = params if params is not None else PARAMS[regressor]()
    return _MODELS[regressor].fit(X, y, params)


def spearman(pred: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho x 100, rounded to 2 decimals as the RegMix notebook reports it."""
    from scipy.stats import spearmanr

    return round(float(spearmanr(pred, y)[0]) * 100, 2)


def cross_validate(X: np.ndarray, y: np.ndarray, regressor: Regressor, params: Params, folds: int = 5,
                   seed: int = 0) -> float:
    """Out-of-fold Spearman x 100 over `folds` shuffled folds of the fit set: for choosing without a test set."""
    from sklearn.model_selection import KFold

    oof = np.empty(len(y))
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(X):
        oof[held] = fit(X[train], y[train], regressor, params).predict(X[held])
    return spearman(oof, y)


# --- the model artifact -------------------------------------------------------------------------------------------


@dataclass
class Model:
    regressor: Any
    manifest: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return self.manifest["features"]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.regressor.predict(X)


def save(folder: str, regressor: Regressor, model, runs: Runs, params: Params, extra: dict[str, Any]) -> dict[str, Any]:
    """Write the model file, then the manifest last."""
    atomic.makedirs(folder)
    name = _FILES[regressor]
    atomic.write_bytes(atomic.join(folder, name), model.to_bytes())
    body = {
        "regressor": regressor,
        "params": params.to_dict(),
        "features": runs.features,
        "target": runs.target,
        "runs": len(runs.index),
        "prior": dict(zip(runs.features, (runs.X.mean(0) / runs.X.mean(0).sum()).round(8).tolist(), strict=True)),
        **extra,
    }
    return manifest.write_manifest(folder, KIND, FORMAT_VERSION, body, [name])


def load(folder: str, verify: bool = True) -> Model:
    m = manifest.read_manifest(folder, KIND, FORMAT_VERSION, verify=verify)
    regressor = m.get("regressor")
    if regressor not in _FILES:
        raise IntegrityError(f"{folder} names an unknown regressor {regressor!r}")
    with atomic.open_read(atomic.join(folder, _FILES[regressor])) as f:
        data = f.read()
    model = GPModel(json.loads(data)) if regressor == "gp" else LightGBMModel(data.decode())
    return Model(model, m)


# --- search -------------------------------------------------------------------------------------------------------


def search(model: Model, prior: dict[str, float] | None = None, samples: int = 100_000, top_k: int = 128,
           concentration: float = 1.0, seed: int = 0, minimize: bool = True) -> dict[str, Any]:
    """Draw `samples` mixtures from Dirichlet(concentration x prior), average the `top_k` with the best prediction.

    As the RegMix notebook does (100,000 draws, top 128, concentration 1): the
    prior is the token distribution, by default the mean training mixture.
    """
    features = model.features
    prior = prior if prior is not None else model.manifest["prior"]
    missing = [f for f in features if f not in prior]
    if missing or set(prior) - set(features):
        raise ConfigError(f"The prior must name exactly the model's domains {features}. "
                          f"Missing {missing}, unknown {sorted(set(prior) - set(features))}.")
    p = np.array([prior[f] for f in features], dtype=np.float64)
    if (p < 0).any() or p.sum() <= 0:
        raise ConfigError(f"The prior must be >= 0 and not all 0. Got {prior} instead.")
    if not 1 <= top_k <= samples:
        raise ConfigError(f"top_k must be in [1, samples={samples}]. Got {top_k} instead.")
    p = p / p.sum()
    alpha = np.maximum(concentration * p, 1e-12)  # a zero prior gives (almost) no weight, not an error
    draws = np.random.default_rng(seed).dirichlet(alpha, size=samples)
    pred = model.predict(draws)
    order = np.argsort(pred if minimize else -pred, kind="stable")[:top_k]
    best = draws[order].mean(0)
    best = best / best.sum()
    return {
        "weights": dict(zip(features, best.round(8).tolist(), strict=True)),
        "predicted": float(model.predict(best[None, :])[0]),
        "predicted_top_k_mean": float(pred[order].mean()),
        "predicted_prior": float(model.predict(p[None, :])[0]),
        "samples": samples, "top_k": top_k, "concentration": concentration, "seed": seed,
        "prior": dict(zip(features, p.round(8).tolist(), strict=True)),
    }


def write_weights(path: str, result: dict[str, Any], model: Model, strip_prefix: str = "") -> dict[str, float]:
    """A weights file the mix config reads (`weights: {regmix: PATH}`): domain -> weight, plus how it was found."""
    import yaml

    weights = {k.removeprefix(strip_prefix): v for k, v in result["weights"].items()}
    body = {
        "kind": WEIGHTS_KIND,
        "format_version": WEIGHTS_VERSION,
        "weights": weights,
        "target": model.manifest["target"],
        "model_sha256": model.manifest[manifest.SELF_SHA],
        "regressor": model.manifest["regressor"],
        "search": {k: v for k, v in result.items() if k not in ("weights",)},
    }
    atomic.write_bytes(path, yaml.safe_dump(body, sort_keys=False).encode())
    return weights


def read_weights(path: str) -> dict[str, float]:
    from tamis.io.side_files import read_yaml

    raw = read_yaml(path, what="RegMix weights file")
    if raw.get("kind") != WEIGHTS_KIND or not isinstance(raw.get("weights"), dict):
        raise ConfigError(f"{path} is not a RegMix weights file (kind {WEIGHTS_KIND!r} with a 'weights' mapping).",
                          hint="write one with `tamis mix regmix search --out weights.yaml`")
    if raw.get("format_version", 0) > WEIGHTS_VERSION:
        raise ConfigError(f"{path} has format version {raw.get('format_version')}; this tamis reads up to "
                          f"{WEIGHTS_VERSION}.")
    weights = raw["weights"]
    if not all(isinstance(v, int | float) and v >= 0 for v in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"{path}: weights must be numbers >= 0, not all 0.")
    return {str(k): float(v) for k, v in weights.items()}
