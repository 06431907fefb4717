"""``mixrepro eval RUN_DIR``: add evaluations to a finished run from its cached final weights."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import MixreproError


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory <results>/<dataset>/<method>/<key>")
    parser.add_argument("--evaluations", nargs="+", required=True, metavar="NAME",
                        help="evaluations to add (e.g. ece fgsm); ones already stored are not recomputed")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--data-root", default=None, help="data root (default: $MIXREPRO_DATA, else ./data)")


def results_root_of(run_dir: Path) -> Path:
    """The store root that holds ``run_dir`` (``<root>/<dataset>/<method>/<key>``)."""
    from .results import ResultsStore

    record = ResultsStore.load_dir(run_dir)
    root = run_dir.resolve().parents[2]
    if ResultsStore(root).run_dir(record.config).resolve() != run_dir.resolve():
        raise MixreproError(f"{run_dir} is not laid out as <results>/<dataset>/<method>/<config key>")
    return root


def cli_eval(args) -> int:
    from .evaluate import EVALUATIONS
    from .results import ResultsStore
    from .runs import train_or_load

    for name in args.evaluations:
        EVALUATIONS.get(name)  # unknown names fail before any work, listing the known ones
    run_dir = Path(args.run_dir)
    root = results_root_of(run_dir)
    config = ResultsStore.load_dir(run_dir).config
    record = train_or_load(config, results_root=root, train=False, evaluations=args.evaluations,
                           device=args.device, data_root=args.data_root)
    for network, results in record.evaluations.items():
        for name in args.evaluations:
            print(f"{network:<6} {name}: {json.dumps(results[name], sort_keys=True, default=str)[:200]}")
    print(f"-> {run_dir / 'evaluations.json'}")
    return 0
