"""A notebook's parameters cell, validated, and what its budget changes from the paper's protocol."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config import BUDGETS, RunConfig, budget_deviations, config_for_budget
from ..errors import InvalidParameterError
from .display import fmt, markdown_table


@dataclass(frozen=True)
class NotebookParameters:
    """The validated parameters of one notebook run."""

    budget: str
    dataset: str
    model: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    train: bool
    results_dir: Path
    seeds_given: bool = False  # the notebook named its seeds (else the budget's)

    def config(self, method: str, seed: int, **fields) -> RunConfig:
        """The run for ``method`` and ``seed`` at this budget; ``fields`` override (e.g. method_params)."""
        return config_for_budget(self.budget, **{"method": method, "dataset": self.dataset, "model": self.model,
                                                 "seed": seed, **fields})

    def deviations(self, method: str | None = None) -> dict[str, tuple]:
        """{field: (ours, paper's)} for this budget (see mixrepro.config.budget_deviations)."""
        return budget_deviations(self.config(method or self.methods[0], self.seeds[0]))


def arm_parameters(params: NotebookParameters, method: str, **fields) -> NotebookParameters:
    """``params`` for the runs of one ablation arm or sweep point (``method`` with ``fields``).

    At budget cpu, unless the notebook named its seeds: the seeds the study plan trains that
    setting with (three for the main table's runs), one seed for a setting outside the plan
    (``mixrepro.plans.cpu_seeds``): ablations and sweeps run one seed at cpu, so the CPU goes to
    the main table's seeds first. Other budgets keep their seeds.
    """
    if params.budget != "cpu" or params.seeds_given:
        return params
    from ..plans import cpu_seeds

    return dataclasses.replace(params, seeds=cpu_seeds(params.config(method, 0, **fields)))


def _names_in(kind: str, names, known) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names:
        raise InvalidParameterError(kind, names, f"None, 'all' or a non-empty list of {known.names()}")
    for name in names:
        known.get(name)  # raises UnknownNameError listing the known names
    return tuple(names)


def validate_parameters(*, budget: str, dataset: str, model: str, methods=None, seeds=None, train: bool = True,
                        results_dir="results", smoke_methods: Sequence[str] = (),
                        table_methods: Sequence[str] = ()) -> NotebookParameters:
    """Check a notebook's ``parameters`` cell; unknown names list the known ones.

    ``methods``: a list of method names; ``'all'`` for every method of the paper's
    table that this study implements (``table_methods``, else every method); None for
    the notebook's default: ``smoke_methods`` at the smoke budget, else ``'all'``.
    ``seeds``: a list of non-negative integers, or None for the budget's seeds.
    ``results_dir``: the results store, relative to the notebook's folder unless absolute.
    """
    from ..data import DATASETS
    from ..methods import METHODS
    from ..models import MODELS

    budget_spec = BUDGETS.get(budget)
    DATASETS.get(dataset)
    MODELS.get(model)
    if methods is None:
        methods = list(smoke_methods) if budget == "smoke" and smoke_methods else "all"
    if methods == "all":
        methods = [m for m in table_methods if m in METHODS] or METHODS.names()
    methods = _names_in("methods", methods, METHODS)
    seeds_given = seeds is not None
    if seeds is None:
        seeds = budget_spec.seeds
    if isinstance(seeds, int) or not isinstance(seeds, (list, tuple)) or not seeds:
        raise InvalidParameterError("seeds", seeds, "None (the budget's seeds) or a non-empty list of integers >= 0")
    for seed in seeds:
        if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
            raise InvalidParameterError("seeds", seeds, "integers >= 0")
    if not isinstance(train, bool):
        raise InvalidParameterError("train", train, "True (train missing runs) or False (load only)")
    if not isinstance(results_dir, (str, Path)) or str(results_dir) == "":
        raise InvalidParameterError("results_dir", results_dir, "a folder path")
    return NotebookParameters(budget, dataset, model, methods, tuple(seeds), train, Path(results_dir),
                              seeds_given=seeds_given)


def deviations_markdown(params: NotebookParameters, paper_protocol: dict | None = None) -> str:
    """A table of what this budget changes from the paper's protocol (never silent).

    ``paper_protocol``: {setting: the paper's value} where the table's protocol differs
    from the RunConfig defaults (e.g. ``{"epochs": 400, "dataset": "cifar100"}``).
    """
    config = params.config(params.methods[0], params.seeds[0]).to_dict()
    paper = {name: ref for name, (_, ref) in params.deviations().items()}
    paper.update(paper_protocol or {})
    rows = [[name, fmt(config.get(name), none="all"), fmt(ref, none="all")] for name, ref in paper.items()
            if config.get(name) != ref]
    if not rows:
        return "Our protocol equals the paper's."
    budget = BUDGETS.get(params.budget)
    return (f"Budget **{params.budget}** ({budget.description}); seeds {list(params.seeds)}.\n\n"
            + markdown_table(["setting", "ours", "paper"], rows))


def open_table_notebook(table: str, *, budget: str, dataset: str, model: str, methods=None, seeds=None,
                        train: bool = True, results_dir="results",
                        smoke_methods: Sequence[str] = ("vanilla", "mixup", "cutmix", "automix")):
    """The opening of every paper-table notebook: (paper table, validated parameters), printed.

    The paper's table decides which methods ``'all'`` means; at the smoke budget only
    ``smoke_methods`` run (a pipeline check).
    """
    from .paper_tables import load_paper_table

    paper = load_paper_table(table)
    params = validate_parameters(budget=budget, dataset=dataset, model=model, methods=methods, seeds=seeds,
                                 train=train, results_dir=results_dir, smoke_methods=smoke_methods,
                                 table_methods=list(paper.rows))
    print(params)
    return paper, params
