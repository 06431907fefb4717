"""What a claim's evidence costs: at the paper's protocol (GPU iterations) and at our ``cpu`` budget.

``compute_text`` counts the iterations a claim would need at the paper's protocol and turns CIFAR
ResNet-18 steps into GPU-hours at the reference logs' seconds per iteration (book/protocol_notes.md,
"Published costs"). ``cpu_hours`` prices runs at the study's ``cpu`` budget from the committed
``mixrepro bench`` report the study plan is built on (one core, bf16, channels_last).
"""
from __future__ import annotations

import math

# Seconds per iteration of a CIFAR ResNet-18 at batch 100 in the reference logs (fp32, RTX 3060-4090).
SECONDS_PER_ITERATION = (0.07, 0.11)


def compute_text(runs: int, epochs: int, images: int, batch: int, *, timed: bool = True, note: str = "") -> str:
    """'R runs x E epochs x I iterations' and, when ``timed`` (CIFAR-sized ResNet-18 steps), GPU-hours
    at the reference logs' seconds per iteration; ``note`` says what the estimate leaves out."""
    per_run = epochs * math.ceil(images / batch)
    text = f"{runs} runs x {epochs} epochs x {math.ceil(images / batch):,} iterations ({per_run:,} per run)"
    if timed:
        low, high = (runs * per_run * s / 3600 for s in SECONDS_PER_ITERATION)
        text += (f", about {low:,.0f}-{high:,.0f} GPU-hours at {SECONDS_PER_ITERATION[0]}-"
                 f"{SECONDS_PER_ITERATION[1]} s per iteration (CIFAR ResNet-18 reference logs)")
    return text + (f"; {note}" if note else "")


def settings(configs) -> dict:
    """{setting key: a config} of ``configs``, seeds merged: what a rerun must train once per seed."""
    return {c.replace(seed=0).key(): c for c in configs}


def rerun_config(config, budget: str = "cpu"):
    """``config``'s setting at ``budget``: its method, data, method parameters and cosine floor."""
    from ..config import config_for_budget

    floor = {} if config.min_lr is None else {"min_lr": config.min_lr}
    return config_for_budget(budget, method=config.method, dataset=config.dataset,
                             method_params=config.method_params, **floor)


def rerun_seeds(config, budget: str = "cpu") -> tuple[int, ...]:
    """The seeds ``config``'s setting runs with at ``budget`` (at cpu: ``plans.cpu_seeds``)."""
    from ..config import BUDGETS
    from ..plans import cpu_seeds

    return cpu_seeds(rerun_config(config)) if budget == "cpu" else BUDGETS.get(budget).seeds


def cpu_hours(configs, budget: str = "cpu") -> float | None:
    """Hours of one core that ``configs`` (any budget) cost when rerun at ``budget`` with its seeds.

    Each distinct setting (seed ignored) is priced as one run at the budget (``plans.run_cost_hours``:
    the bench report's seconds per step of its loss variant or mixer, and the scoring of its networks in
    the scored epochs; the pages' evaluations are not priced) times the seeds it runs with
    (:func:`rerun_seeds`: at cpu, an ablation arm one); None when the bench report is missing or
    cannot price a method."""
    from ..plans import run_cost_hours

    total = 0.0
    for config in settings(configs).values():
        hours = run_cost_hours(rerun_config(config, budget))
        if hours is None:
            return None
        total += len(rerun_seeds(config, budget)) * hours
    return total
