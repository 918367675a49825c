"""RegMix regressors side by side: fitted on the 512 1M-parameter runs, ranked on 256 other 1M runs and at 60M.

    python benchmarks/regmix.py [--targets all|COLUMN ...] [--cv K] [--results PATH] [--json]

Peers, all fitted on train_*_1m.csv only:
- notebook_lgbm_es: the RegMix notebook's LightGBM as published (lr 0.01, up to
  1000 rounds, early stopping on the 1M *test* set), so its 1M figure has seen
  the test set; reported for reference only.
- notebook_lgbm_1000: the same without early stopping (1000 rounds).
- linear: ordinary least squares on the weights (the paper's linear baseline).
- tamis_lightgbm / tamis_gp: `tamis mix regmix fit` with its defaults, which
  were chosen by 5-fold cross-validation on the 512 training runs alone
  (docs/mixing.md); `--cv K` recomputes their out-of-fold Spearman.
Spearman rho x 100 on test_*_1m.csv and on test_*_60m.csv (the same mixtures
trained at 60M parameters: transfer to a larger model).
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tamis.mixers import regmix  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mixing" / "regmix"
RESULTS = Path(__file__).resolve().parent / "results" / "regmix.json"
MAIN = "metric/the_pile_pile_cc_val_loss"
NOTEBOOK = {"task": "train", "boosting_type": "gbdt", "objective": "regression", "metric": ["l1", "l2"],
            "num_iterations": 1000, "seed": 42, "learning_rate": 1e-2, "verbosity": -1}
REFERENCE = {MAIN: {"notebook_lgbm_es": {"test_1m": 98.92, "test_60m": 98.49},
                    "linear": {"test_1m": 90.21, "test_60m": 89.33}}}


def notebook_lgbm(X, y, Xe, ye, early_stopping: bool):
    import lightgbm as lgb

    reg = lgb.LGBMRegressor(**NOTEBOOK)
    if early_stopping:
        return reg.fit(X, y, eval_set=[(Xe, ye)], eval_metric="l2", callbacks=[lgb.early_stopping(3, verbose=False)])
    return reg.fit(X, y)


def run_target(target: str, cv: int) -> dict:
    train = regmix.read_runs(str(DATA / "train_mixture_1m.csv"), str(DATA / "train_pile_loss_1m.csv"), target)
    tests = {name: regmix.read_runs(str(DATA / f"test_mixture_{size}.csv"), str(DATA / f"test_pile_loss_{size}.csv"),
                                    target, features=train.features)
             for name, size in (("test_1m", "1m"), ("test_60m", "60m"))}
    X, y = train.X, train.y
    out: dict = {}
    from sklearn.linear_model import LinearRegression

    models = {
        "notebook_lgbm_es": lambda: notebook_lgbm(X, y, tests["test_1m"].X, tests["test_1m"].y, True),
        "notebook_lgbm_1000": lambda: notebook_lgbm(X, y, None, None, False),
        "linear": lambda: LinearRegression().fit(X, y),
        "tamis_lightgbm": lambda: regmix.fit(X, y, "lightgbm"),
        "tamis_gp": lambda: regmix.fit(X, y, "gp"),
    }
    for name, make in models.items():
        t = time.time()
        model = make()
        fit_s = time.time() - t
        out[name] = {k: regmix.spearman(model.predict(r.X), r.y) for k, r in tests.items()}
        out[name]["fit_s"] = round(fit_s, 2)
        if cv and name.startswith("tamis_"):
            kind = name.removeprefix("tamis_")
            out[name]["cv_spearman_train"] = regmix.cross_validate(X, y, kind, regmix.PARAMS[kind](), cv)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=[MAIN], help="loss columns, or 'all' for the 13")
    ap.add_argument("--cv", type=int, default=0, help="also K-fold out-of-fold Spearman of tamis's defaults on train")
    ap.add_argument("--results", default=str(RESULTS), help=f"where to save the JSON (default {RESULTS})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    targets = args.targets
    if targets == ["all"]:
        with open(DATA / "train_pile_loss_1m.csv") as f:
            targets = [c for c in f.readline().strip().split(",") if c != "index"]
    results = {t: run_target(t, args.cv) for t in targets}
    main_row = results.get(MAIN, {})
    result = {
        "targets": results,
        "reference_notebook": REFERENCE,
        "tamis_default": "tamis_gp",
        "params": {"gp": regmix.GPParams().to_dict(), "lightgbm": regmix.LightGBMParams().to_dict()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    if main_row:
        result["pile_cc"] = {k: {s: v[s] for s in ("test_1m", "test_60m")} for k, v in main_row.items()}
        result["pile_cc_ratio_gp_vs_notebook"] = {
            s: round(main_row["tamis_gp"][s] / REFERENCE[MAIN]["notebook_lgbm_es"][s], 4) for s in ("test_1m", "test_60m")}
    if len(results) > 1:
        result["mean_over_targets"] = {
            name: {s: round(float(np.mean([r[name][s] for r in results.values()])), 2) for s in ("test_1m", "test_60m")}
            for name in next(iter(results.values()))}
    Path(args.results).parent.mkdir(exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for t, rows in results.items():
            print(t)
            for name, r in rows.items():
                print(f"  {name:20s} 1M {r['test_1m']:6.2f}  60M {r['test_60m']:6.2f}  fit {r['fit_s']:.1f}s"
                      + (f"  cv {r['cv_spearman_train']:.2f}" if "cv_spearman_train" in r else ""))


if __name__ == "__main__":
    main()
