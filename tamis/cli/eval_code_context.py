"""`tamis eval code-context`: hit@1/5/10 and ms per query of the code context retriever on a task folder."""

import argparse
import json
import os

HELP = "cross-file context retrieval on code-context tasks (hit@1, hit@5, hit@10, ms per query)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True, help="task folder: tasks.jsonl and repos.jsonl.gz")
    parser.add_argument(
        "--cross-validate", action="store_true",
        help="score each repository with weights fitted on the other repositories (out-of-fold)",
    )  # fmt: skip
    parser.add_argument("--per-repo", action="store_true", help="also report per repository and for re-exports")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from tamis.eval import code_context as cc

    data = cc.load_tasks(args.tasks)
    indexes = cc.build_indexes(data)
    if args.cross_validate:
        per_task, _ = cc.cross_validate(data, indexes)
    else:
        per_task = cc.run_tasks(data, indexes)
    full = cc.report(per_task)
    result = {k: full[k] for k in ("hit@1", "hit@5", "hit@10", "tasks", "ms_per_query")}
    result["weights"] = "out-of-fold" if args.cross_validate else "default"
    if args.per_repo:
        result["per_repo"], result["reexport"] = full["per_repo"], full["reexport"]
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}  {value}")
    return 0
