"""`tamis quality train`: a quality classifier (the default ensemble, TF-IDF + LR or fastText) from labeled files."""

import argparse
import json

HELP = "train a quality classifier (TF-IDF + LR and fastText ensemble, or either alone) and write it with a manifest"
KINDS = ("ensemble", "tfidf_lr", "fasttext")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="ensemble",
        help="ensemble (default: rank average of tfidf_lr and fasttext, needs --unlabeled; a folder), "
        "tfidf_lr (settings chosen by 5-fold CV; a folder) or fasttext (a .bin file)",
    )
    parser.add_argument(
        "--positive", action="append", default=[], metavar="P", help="high-quality documents (repeatable)"
    )
    parser.add_argument(
        "--negative", action="append", default=[], metavar="N", help="low-quality documents (repeatable)"
    )
    parser.add_argument(
        "--labeled",
        action="append",
        default=[],
        metavar="L",
        help="JSONL documents with a 0/1 quality_label, e.g. human judgements (repeatable)",
    )
    parser.add_argument(
        "--unlabeled",
        action="append",
        default=[],
        metavar="U",
        help="documents like those to be scored: fastText pretrains its word vectors on them (skipgram), "
        "the ensemble also ranks its members' scores against them (repeatable)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="MODEL",
        help="ensemble, tfidf_lr: a folder (manifest.json inside); fasttext: a file with MODEL.manifest.json beside it",
    )
    parser.add_argument("--config", metavar="YAML", help="fasttext parameters (dim, word_ngrams, epoch, lr, ...)")
    for name, f in _params_cls().model_fields.items():
        flag = "--" + name.replace("_", "-")
        if f.annotation is bool:
            parser.add_argument(
                flag, type=_bool, default=None, metavar="true|false", help=f"fasttext; default {f.default}"
            )
        else:
            parser.add_argument(flag, type=f.annotation, default=None, help=f"fasttext; default {f.default}")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def _params_cls():
    from tamis.filters.fasttext_model import FastTextParams

    return FastTextParams


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def params_from(args: argparse.Namespace):
    """YAML config first, then any flag given on the command line."""
    from tamis.validation import parse

    values = {}
    if args.config:
        from tamis.io.side_files import read_yaml

        values = read_yaml(args.config)
    for name in _params_cls().model_fields:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    return parse(_params_cls(), values, owner="quality train")


def run(args: argparse.Namespace) -> int:
    from tamis.errors import ConfigError

    if not (args.positive or args.labeled) or not (args.negative or args.labeled):
        raise ConfigError(
            "quality train needs positives and negatives", hint="give --positive and --negative, or --labeled"
        )
    train = {"ensemble": _train_ensemble, "tfidf_lr": _train_tfidf, "fasttext": _train_fasttext}[args.kind]
    manifest = train(args)
    if args.json:
        print(json.dumps(manifest))
    else:
        print(f"wrote {args.out}: {args.kind}, labels {manifest['labels']}, examples {manifest['examples']}")
    return 0


def _train_tfidf(args: argparse.Namespace) -> dict:
    from tamis.errors import ConfigError
    from tamis.filters import tfidf_model

    given = [n for n in _params_cls().model_fields if getattr(args, n, None) is not None]
    if args.unlabeled or args.config or given:
        flags = ["--unlabeled"] * bool(args.unlabeled) + ["--config"] * bool(args.config)
        flags += ["--" + n.replace("_", "-") for n in given]
        raise ConfigError(
            f"{', '.join(flags)} apply to --kind fasttext only",
            hint="TF-IDF + LR chooses its own settings by cross-validation; drop them or add --kind fasttext",
        )
    return tfidf_model.train_from_files(args.positive, args.negative, args.labeled, args.out)


def _train_ensemble(args: argparse.Namespace) -> dict:
    """fastText options set the fastText member; without --epoch its epoch count is chosen by CV."""
    from tamis.filters import ensemble_model

    given = params_from(args).model_dump(exclude_unset=True)
    params = ensemble_model.member_params(**given)
    epochs = (params.epoch,) if "epoch" in given else ensemble_model.EPOCHS
    return ensemble_model.train_from_files(
        args.positive, args.negative, args.labeled, args.unlabeled, args.out, params, epochs
    )


def _train_fasttext(args: argparse.Namespace) -> dict:
    from tamis.filters import fasttext_model as fm

    params = params_from(args)
    examples, sources = [], []
    for paths, label in ((args.positive, fm.POSITIVE), (args.negative, fm.NEGATIVE)):
        for path in paths:
            ex, entry = fm.read_labeled(path, label)
            examples += ex
            sources.append(entry)
    for path in args.labeled:
        ex, entry = fm.read_judged(path)
        examples += ex
        sources.append(entry)
    return fm.train(examples, args.out, params, sources, unlabeled=args.unlabeled)
