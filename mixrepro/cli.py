"""The ``mixrepro`` command line: datasets, methods, train, eval.

Each subcommand's work lives in the package module it belongs to; this file
only parses arguments and dispatches.
"""
from __future__ import annotations

import argparse
import sys

from .errors import MixreproError


def _datasets(args) -> int:
    from .data import print_datasets

    print_datasets(root=args.root)
    return 0


def _methods(args) -> int:
    from .methods import print_methods

    print_methods()
    return 0


def _train(args) -> int:
    from .training import cli_train

    return cli_train(args)


def _verify(args) -> int:
    from .verify import cli_verify

    return cli_verify(args)


def _runs(args) -> int:
    from .runs import cli_runs

    return cli_runs(args)


def _sweep(args) -> int:
    from .sweep import cli_sweep

    return cli_sweep(args)


def _eval(args) -> int:
    from .evalrun import cli_eval

    return cli_eval(args)


def _bench(args) -> int:
    from .training.bench import cli_bench

    return cli_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixrepro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list datasets, their size and whether they are available here")
    p.add_argument("--root", default=None, help="data root (default: $MIXREPRO_DATA, else ./data)")
    p.set_defaults(func=_datasets)

    p = sub.add_parser("methods", help="list every method with its default hyperparameters")
    p.set_defaults(func=_methods)

    p = sub.add_parser("train", help="train one run (see --help)")
    from .training import add_train_arguments

    add_train_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("verify", help="retrain stored runs from their records; exit 0 if bit-identical")
    from .verify import add_verify_arguments

    add_verify_arguments(p)
    p.set_defaults(func=_verify)

    p = sub.add_parser("runs", help="list stored runs; --stale: those made by older method code")
    p.add_argument("--stale", action="store_true", help="only runs whose method code changed since")
    p.add_argument("--out", default=None, help="results root (default: $MIXREPRO_RESULTS, else notebooks/results)")
    p.set_defaults(func=_runs)

    p = sub.add_parser("sweep", help="train a study plan's runs (--workers N: one process per core)")
    from .sweep import add_sweep_arguments

    add_sweep_arguments(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("eval", help="evaluate a finished run directory")
    from .evalrun import add_eval_arguments

    add_eval_arguments(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("bench", help="seconds per training step of each method, and the ratio to vanilla")
    from .training.bench import add_bench_arguments

    add_bench_arguments(p)
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MixreproError as err:
        print(f"mixrepro: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
