"""RegMix: reading proxy runs, fitting and saving regressors without pickle, evaluating, and searching mixtures."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tamis import cli
from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.mixers import regmix

DOMAINS = ["web", "code", "books", "math"]


def synthetic_runs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Loss falls with the log share of `web` and a little with `books`, as proxy-run losses do."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.full(len(DOMAINS), 0.6), size=n).round(3)
    y = 5.0 - 0.4 * np.log(X[:, 0] + 0.01) - 0.1 * np.log(X[:, 2] + 0.01) + rng.normal(0, 0.02, n)
    return X, y


def write_csvs(folder: Path, X: np.ndarray, y: np.ndarray, name: str, shuffle_losses: bool = False) -> tuple[str, str]:
    mixtures, losses = folder / f"{name}_mixture.csv", folder / f"{name}_loss.csv"
    with open(mixtures, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", *(f"train_{d}" for d in DOMAINS)])
        w.writerows([i + 1, *row] for i, row in enumerate(X.tolist()))
    order = np.random.default_rng(0).permutation(len(y)) if shuffle_losses else np.arange(len(y))
    with open(losses, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "metric/other", "metric/target"])
        w.writerows([i + 1, 0.0, y[i]] for i in order.tolist())
    return str(mixtures), str(losses)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_join_on_the_index_not_the_row_order(tmp_path):
    X, y = synthetic_runs(30, 0)
    m, loss = write_csvs(tmp_path, X, y, "a", shuffle_losses=True)
    runs = regmix.read_runs(m, loss, "metric/target")
    assert runs.features == [f"train_{d}" for d in DOMAINS]
    assert np.allclose(runs.X, X) and np.allclose(runs.y, y)
    with pytest.raises(InputError, match="no column 'metric/nope'"):
        regmix.read_runs(m, loss, "metric/nope")
    short = tmp_path / "short.csv"
    short.write_text("\n".join(Path(loss).read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(InputError, match="same runs"):
        regmix.read_runs(m, str(short), "metric/target")


@pytest.mark.parametrize("regressor", ["gp", "lightgbm"])
def test_saved_model_predicts_the_same_and_refuses_a_changed_file(tmp_path, regressor):
    X, y = synthetic_runs(80, 1)
    m, loss = write_csvs(tmp_path, X, y, "train")
    runs = regmix.read_runs(m, loss, "metric/target")
    params = regmix.PARAMS[regressor](**({"n_estimators": 200} if regressor == "lightgbm" else {}))
    model = regmix.fit(runs.X, runs.y, regressor, params)
    regmix.save(str(tmp_path / "model"), regressor, model, runs, params, {})
    loaded = regmix.load(str(tmp_path / "model"))
    Xt, yt = synthetic_runs(40, 2)
    assert np.allclose(loaded.predict(Xt), model.predict(Xt), rtol=0, atol=1e-12)
    assert regmix.spearman(loaded.predict(Xt), yt) > 90
    m = loaded.manifest
    assert m["target"] == "metric/target" and m["features"] == runs.features and m["regressor"] == regressor
    assert sum(m["prior"].values()) == pytest.approx(1)
    files = list((tmp_path / "model").iterdir())
    assert {p.name for p in files} == {"manifest.json", "model.json" if regressor == "gp" else "model.txt"}
    model_file = next(p for p in files if p.name != "manifest.json")
    model_file.write_bytes(model_file.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(IntegrityError, match="checksum"):
        regmix.load(str(tmp_path / "model"))


def test_search_is_seeded_and_finds_the_low_loss_mixture(tmp_path):
    X, y = synthetic_runs(120, 3)
    m, loss = write_csvs(tmp_path, X, y, "train")
    runs = regmix.read_runs(m, loss, "metric/target")
    params = regmix.GPParams()
    regmix.save(str(tmp_path / "model"), "gp", regmix.fit(runs.X, runs.y, "gp", params), runs, params, {})
    model = regmix.load(str(tmp_path / "model"))
    a = regmix.search(model, samples=5000, top_k=50, seed=1)
    assert a == regmix.search(model, samples=5000, top_k=50, seed=1)
    w = a["weights"]
    assert sum(w.values()) == pytest.approx(1)
    assert w["train_web"] == max(w.values()) and w["train_web"] > 0.5  # the domain that lowers the loss
    assert a["predicted"] < a["predicted_prior"]
    with pytest.raises(ConfigError, match="exactly the model's domains"):
        regmix.search(model, prior={"train_web": 1.0})
    path = tmp_path / "weights.yaml"
    written = regmix.write_weights(str(path), a, model, strip_prefix="train_")
    assert set(written) == set(DOMAINS)
    assert regmix.read_weights(str(path)) == pytest.approx(written)
    path.write_text("weights: {web: 1}\n")
    with pytest.raises(ConfigError, match="not a RegMix weights file"):
        regmix.read_weights(str(path))


def test_cli_fit_eval_search(tmp_path, capsys):
    X, y = synthetic_runs(80, 4)
    m, loss = write_csvs(tmp_path, X, y, "train")
    Xt, yt = synthetic_runs(40, 5)
    mt, losst = write_csvs(tmp_path, Xt, yt, "test")
    model = tmp_path / "model"
    code, out, err = run_cli(capsys, "mix", "regmix", "fit", "--mixtures", m, "--losses", loss, "--target",
                             "metric/target", "--out", model, "--cv", 3, "--json")
    assert code == 0, err
    fitted = json.loads(out)
    assert fitted["regressor"] == "gp" and fitted["runs"] == 80 and fitted["cv_spearman"] > 80
    code, out, err = run_cli(capsys, "mix", "regmix", "eval", "--model", model, "--mixtures", mt, "--losses", losst,
                             "--target", "metric/target", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == 40 and report["spearman"] > 90
    weights = tmp_path / "w.yaml"
    code, out, err = run_cli(capsys, "mix", "regmix", "search", "--model", model, "--out", weights, "--samples", 2000,
                             "--top-k", 20, "--strip-prefix", "train_")
    assert code == 0, err
    assert set(regmix.read_weights(str(weights))) == set(DOMAINS)
    code, _, err = run_cli(capsys, "mix", "regmix", "fit", "--mixtures", m, "--losses", loss, "--target",
                           "metric/target", "--out", model, "--params", '{"eps": -1}')
    assert code == 2 and "eps" in err


def test_lightgbm_defaults_rank_pile_cc_loss_at_least_as_well_as_the_notebook(shared_data):
    """The CV-chosen LightGBM settings, fitted on the 512 1M runs only (the GP default: benchmarks/regmix.py)."""
    data = shared_data / "mixing" / "regmix"
    target = "metric/the_pile_pile_cc_val_loss"
    train = regmix.read_runs(str(data / "train_mixture_1m.csv"), str(data / "train_pile_loss_1m.csv"), target)
    assert train.X.shape == (512, 17)
    model = regmix.fit(train.X, train.y, "lightgbm")
    for size, notebook in (("1m", 98.92), ("60m", 98.49)):
        test = regmix.read_runs(str(data / f"test_mixture_{size}.csv"), str(data / f"test_pile_loss_{size}.csv"), target,
                                features=train.features)
        assert regmix.spearman(model.predict(test.X), test.y) >= notebook, size
