"""``mixrepro train``: build a RunConfig from a budget and ``--set key=value`` overrides, train it.

``--set`` takes any RunConfig field except method, dataset and seed (they have
their own flags), and ``method.<name>=<value>`` for the method's hyperparameters
(e.g. ``--set method.alpha=0.2``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json

from ..config import BUDGETS, RunConfig, budget_runtime, config_for_budget
from ..errors import InvalidParameterError

OWN_FLAGS = ("method", "dataset", "seed", "method_params")
METHOD_PREFIX = "method."


def settable_fields() -> dict[str, set[str]]:
    """{field: allowed kinds ('int', 'float', 'str', 'None')} for every field ``--set`` may change."""
    return {
        f.name: {kind.strip() for kind in str(f.type).split("|")}
        for f in dataclasses.fields(RunConfig)
        if f.name not in OWN_FLAGS
    }


def parse_field_value(name: str, text: str, kinds: set[str]):
    if "None" in kinds and text.lower() in ("none", "null"):
        return None
    for kind, convert in (("int", int), ("float", float), ("str", str)):
        if kind in kinds:
            with contextlib.suppress(ValueError):
                return convert(text)
    raise InvalidParameterError(name, text, " or ".join(sorted(kinds)))


def parse_method_value(text: str):
    """JSON numbers, booleans, null and lists; anything else is taken as a string (e.g. a mixer name)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_set_items(items, method: str) -> tuple[dict, dict]:
    """``['epochs=3', 'method.alpha=0.2']`` -> ({'epochs': 3}, {'alpha': 0.2}), every key checked."""
    from ..methods.registry import METHODS

    fields, method_cls = settable_fields(), METHODS.get(method)
    allowed = sorted(fields) + [METHOD_PREFIX + p for p in sorted(method_cls.default_params)]
    config_changes, method_params = {}, {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not text:
            raise InvalidParameterError("--set", item, "key=value")
        if key.startswith(METHOD_PREFIX) and key[len(METHOD_PREFIX):] in method_cls.default_params:
            method_params[key[len(METHOD_PREFIX):]] = parse_method_value(text)
        elif key in fields:
            config_changes[key] = parse_field_value(key, text, fields[key])
        else:
            raise InvalidParameterError("--set key", key, f"one of {', '.join(allowed)}")
    method_cls.validate_params({**method_cls.default_params, **method_params})
    return config_changes, method_params


def format_value(value) -> str:
    return "none" if value is None else json.dumps(value) if not isinstance(value, str) else value


def set_arguments(config: RunConfig, base: RunConfig) -> list[str]:
    """The ``--set`` items that turn ``base`` into ``config``."""
    ours, theirs = config.to_dict(), base.to_dict()
    items = [f"{k}={format_value(ours[k])}" for k in settable_fields() if ours[k] != theirs[k]]
    items += [f"{METHOD_PREFIX}{k}={format_value(v)}" for k, v in sorted(config.method_params.items())]
    return items


def config_from_args(args) -> RunConfig:
    """The RunConfig the arguments describe; every name and value is checked before any work starts."""
    from .. import data, models

    from .components import check_trainable

    BUDGETS.get(args.budget)
    data.DATASETS.get(args.dataset)
    check_trainable(args.dataset)
    config_changes, method_params = parse_set_items(args.set, args.method)
    config = config_for_budget(args.budget, method=args.method, dataset=args.dataset, seed=args.seed,
                               method_params=method_params, **config_changes)
    models.MODELS.get(config.model)
    return config


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, help="method name (see `mixrepro methods`)")
    parser.add_argument("--dataset", required=True, help="dataset name (see `mixrepro datasets`)")
    parser.add_argument("--budget", default="smoke", help="budget profile: smoke, cpu, gpu or paper (default smoke)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config field (epochs=3, lr=0.2, min_lr=none) or a method "
                             "hyperparameter (method.alpha=0.2); repeatable")
    parser.add_argument("--out", default=None, help="results root (default: $MIXREPRO_RESULTS, else notebooks/results)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (CUDA)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="fp32 (exact, bit-identical reruns) or bf16 autocast; default: the budget's "
                             "(bf16 for cpu/gpu/paper, fp32 for smoke)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last memory layout (default: the budget's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads, pinned and recorded (default: torch's; a resume "
                             "takes the checkpoint's). Reruns are bit-identical only at the same count")
    parser.add_argument("--data-root", default=None, help="data root (default: $MIXREPRO_DATA, else ./data)")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and train from scratch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def result_line(record) -> str:
    s, c = record.summary, record.config
    return (
        f"{c.method} on {s['dataset_label']} (seed {c.seed}, {c.epochs} epochs): "
        f"top-1 online {s['online']['final']:.2f} / EMA {s['ema']['final']:.2f} "
        f"(median last 10: {s['online']['median_last10']:.2f} / {s['ema']['median_last10']:.2f}); "
        f"{s['wall_time_s']:.1f} s, {s['train_images_per_s']:.0f} img/s -> {record.run_dir}"
    )


def runtime_from_args(args) -> dict:
    """fit()'s amp / channels_last / threads: the flags where given, else the budget's fast path."""
    fast = budget_runtime(args.budget)  # None: the device default (on for CUDA)
    return {
        "amp": fast["amp"] if args.precision is None else args.precision == "bf16",
        "channels_last": fast["channels_last"] if args.channels_last is None else args.channels_last,
        "threads": args.threads,
    }


def cli_train(args) -> int:
    from .loop import fit

    config = config_from_args(args)
    record = fit(config, results_root=args.out, device=args.device, compile=args.compile,
                 progress=not args.no_progress, resume=not args.restart, data_root=args.data_root,
                 **runtime_from_args(args))
    if record.run_dir is not None:  # only the process that published the run reports it
        print(result_line(record))
    return 0
