"""Runs for a notebook: train-or-load every (method, seed), or say why a claim cannot be tested here."""
from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

from ..config import budget_runtime
from ..errors import InvalidParameterError
from ..plans import DATASET as STUDY_DATASET
from .parameters import NotebookParameters

SHARED_EVALUATIONS = ("ece", "fgsm")  # computed for every run, so notebooks share runs
# A file each page appends every study-dataset run it asks for to, stored or not, one JSON line per run
# (``notebook_runner --plan-pages`` sets it and turns the lines into the ``pages`` sweep plan).
WANTED_RUNS_ENV = "MIXREPRO_RECORD_WANTED"
# The page executing (its notebook's stem, set by the runner): each recorded line names the page that
# asked, so the pages plan can order its runs by page.
WANTED_PAGE_ENV = "MIXREPRO_RECORD_PAGE"
DM_CE_PARAMS = {"loss": "dm_ce"}  # method_params that train a method with DM(CE) instead of MCE


def dataset_available(name: str, root=None) -> bool:
    """Whether a copy of dataset ``name`` is found under the data root (``mixrepro datasets``)."""
    from ..data import describe_datasets

    rows = {row["name"]: row for row in describe_datasets(root)}
    if name not in rows:
        from ..data import DATASETS

        DATASETS.get(name)  # UnknownNameError listing the known datasets
    return bool(rows[name]["available"])


def collect_runs(params: NotebookParameters, *, methods: Sequence[str] | None = None, dataset: str | None = None,
                 model: str | None = None, evaluations: Sequence[str] = SHARED_EVALUATIONS,
                 evaluation_options: dict | None = None, log=None, **fields) -> tuple[dict, str | None]:
    """Train-or-load every (method, seed) run: ({method: [RunRecord per seed]}, reason or None).

    A run that cannot be had here is left out and the reason names it ('not tested here'):
    not stored and its dataset absent (how to get the data), or, while ``params.train`` is
    False, not stored (or stored without the ``evaluations``): on the study's dataset the
    sweep has not reached it yet (the reason gives the command that trains it), on any other
    the data is missing. With ``train`` False the reason never depends on this machine's disk.
    Every notebook asks for the same ``evaluations`` so a run trained for one serves all
    (``evaluation_options[name]``: keyword arguments of an evaluation computed here, e.g. the
    mixer of ``mixed_accuracy``; the study's are ``mixrepro.plans.STUDY_EVALUATION_OPTIONS``).
    Training progress goes to ``log``, by default the kernel's own stderr (the terminal that
    runs papermill or Jupyter), not into the notebook: a notebook's outputs are then the same
    whether it trained or loaded, which is what nbval compares.
    """
    import contextlib
    import sys

    from ..results import ResultsStore
    from ..runs import train_command, train_or_load

    def quietly(fn, *args, **kwargs):
        sink = log or sys.__stderr__
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return fn(*args, **kwargs)

    dataset = dataset or params.dataset
    can_train = params.train and dataset_available(dataset)
    store = ResultsStore(params.results_dir)
    runs: dict[str, list] = {}
    absent, not_run = [], []
    for method in methods or params.methods:
        records = []
        for seed in params.seeds:
            config = params.config(method, seed, **{"dataset": dataset, "model": model or params.model, **fields})
            if dataset == STUDY_DATASET:
                record_wanted(config, evaluations)
            stored = store.load(config)
            if not params.train and not has_evaluations(stored, evaluations):
                # Loading only: the reason must not depend on which machine executes the page
                # (nbval re-executes pages without data), so it names the study's plan, not this disk.
                if dataset == STUDY_DATASET:
                    not_run.append((f"{method} seed {seed}", train_command(config, params.results_dir),
                                    sweep_plan_of(config)))
                else:
                    absent.append(f"{method} seed {seed}")
                continue
            if stored is None and not dataset_available(dataset):
                absent.append(f"{method} seed {seed}")
                continue
            records.append(quietly(train_or_load, config, results_root=params.results_dir, train=can_train,
                                   evaluations=tuple(evaluations), evaluation_options=evaluation_options,
                                   **budget_runtime(params.budget)))
        if records:
            runs[method] = records
    without = [m for m in methods or params.methods if m not in runs]
    return runs, MissingRuns.build(dataset, absent, not_run, without)


def record_wanted(config, evaluations: Sequence[str]) -> None:
    """Append a run a page asks for to the file named by $MIXREPRO_RECORD_WANTED, if set."""
    path = os.environ.get(WANTED_RUNS_ENV)
    if path:
        line = json.dumps({"config": config.to_dict(), "evaluations": list(evaluations),
                           "page": os.environ.get(WANTED_PAGE_ENV, "")}, sort_keys=True)
        with open(path, "a") as handle:  # O_APPEND: lines from pages executed at once stay whole
            handle.write(line + "\n")


class MissingRuns(str):
    """:func:`collect_runs`' reason (its text), keeping the runs it names per method, so a claim about
    some of a page's methods is told why *their* runs are missing (:func:`missing_among`) from the
    page's one collect, without reading the store again.

    ``absent``: 'method seed s' names whose data is not here; ``not_run``: ('method seed s', train
    command, sweep plan) triples the sweep has not trained or evaluated yet; ``methods_without_runs``:
    the asked-for methods with no run at all.
    """

    def __new__(cls, text: str, methods_without_runs: Sequence[str] = (), *, dataset: str | None = None,
                absent: Sequence[str] = (), not_run: Sequence[tuple[str, str, str | None]] = ()):
        reason = super().__new__(cls, text)
        reason.methods_without_runs = tuple(methods_without_runs)
        reason.dataset, reason.absent, reason.not_run = dataset, tuple(absent), tuple(not_run)
        return reason

    @staticmethod
    def build(dataset: str, absent: Sequence[str], not_run: Sequence[tuple[str, str, str | None]],
              methods_without_runs: Sequence[str]) -> "MissingRuns | None":
        """The reason for these missing runs (None when none are): pending when no data is absent."""
        text = missing_reason(dataset, list(absent), list(not_run))
        if text is None:
            return None
        return (MissingRuns if absent else PendingRuns)(text, methods_without_runs, dataset=dataset, absent=absent,
                                                         not_run=not_run)

    def among(self, methods: Sequence[str]) -> "MissingRuns | None":
        """This reason restricted to the runs of ``methods`` (None when none of theirs is missing)."""
        if self.dataset is None:
            raise InvalidParameterError("reason", str(self), "a reason returned by collect_runs (a joined or "
                                        "hand-made reason does not say which runs it names)")
        ours = set(methods)
        return MissingRuns.build(self.dataset, [n for n in self.absent if method_of(n) in ours],
                                 [run for run in self.not_run if method_of(run[0]) in ours],
                                 [m for m in self.methods_without_runs if m in ours])


class PendingRuns(MissingRuns):
    """A missing-runs reason that names only runs of the study's plan not trained or evaluated yet
    (nothing is missing for lack of data), with the asked-for methods that have no run at all.

    ``judge`` gives such a claim a *provisional* verdict on the seeds run so far when every method
    has at least one: the evidence is partial, not absent. Joining it into a longer text (str
    operations) gives a plain str, which keeps the claim untested.
    """


def missing_among(reason: str | None, methods: Sequence[str]) -> str | None:
    """Why runs of ``methods`` alone are missing, from a page's :func:`collect_runs` reason: a claim about
    some of a page's methods waits only for their runs, not for the others'."""
    if reason is None:
        return None
    if not isinstance(reason, MissingRuns):
        raise InvalidParameterError("reason", reason, "None or a reason returned by collect_runs")
    return reason.among(methods)


def method_of(run_name: str) -> str:
    """'mixup seed 1' -> 'mixup'."""
    return run_name.rpartition(" seed ")[0]


def join_reasons(reasons) -> str | None:
    """The distinct missing-runs reasons joined with '; ' (None when there are none). Pending study runs
    stay pending: when every part is a :class:`PendingRuns`, so is the result (methods without runs
    merged), so a claim that needs several groups of runs is still judged provisionally."""
    parts = list(dict.fromkeys(r for r in reasons if r))
    if not parts:
        return None
    text = "; ".join(parts)
    if all(isinstance(r, PendingRuns) for r in parts):
        return PendingRuns(text, list(dict.fromkeys(m for r in parts for m in r.methods_without_runs)))
    return text


SMOKE_EVALUATION_IMAGES = 100  # test images of a smoke run's corruption and occlusion evaluations


def evaluation_options(params: NotebookParameters) -> dict:
    """The study sweep's evaluation options (``plans.STUDY_EVALUATION_OPTIONS``) for a page's runs.

    Corruption and occlusion run on the plan's fixed class-balanced 2,000-image test subset, on the
    whole test set where it is smaller, and at budget smoke on the first 100 images of that order:
    smoke numbers only show that the pipeline runs, and corruption's 60 corrupted copies of the test
    set per network otherwise dominate a smoke page's time.
    """
    from ..plans import STUDY_EVALUATION_OPTIONS
    from .scores import test_images as scored_images

    test_images = scored_images(params.config(params.methods[0], params.seeds[0]))
    options = {name: dict(value) for name, value in STUDY_EVALUATION_OPTIONS.items()}
    for value in options.values():
        if "images" in value:
            wanted = SMOKE_EVALUATION_IMAGES if params.budget == "smoke" else value["images"]
            value["images"] = wanted if wanted <= test_images else None
    return options


def has_evaluations(record, evaluations: Sequence[str]) -> bool:
    """Whether ``record`` exists and holds every evaluation for both networks."""
    from ..results import NETWORKS

    return record is not None and all(name in record.evaluations.get(net, {}) for name in evaluations
                                      for net in NETWORKS)


def missing_reason(dataset: str, absent: list[str], not_run: list[tuple[str, str, str | None]]) -> str | None:
    """Why runs are missing: the dataset is not here, or the sweep has not run (or evaluated) them yet
    (naming the plan or plans that train them)."""
    parts = []
    if absent:
        parts.append(f"no stored runs exist for {by_method(absent)} and dataset '{dataset}' is not available to "
                     "the study; see `mixrepro datasets` for how to obtain it")
    if not_run:
        parts.append(f"not run (or not evaluated) yet at this budget: {by_method([n for n, _, _ in not_run])}; "
                     + who_trains(not_run))
    return "; ".join(parts) or None


def who_trains(not_run: list[tuple[str, str, str | None]]) -> str:
    """'`mixrepro sweep study pages` trains them, e.g. `<train command>`': the plans holding the runs; a
    run in neither is named with its own command."""
    planned = [(command, plan) for _, command, plan in not_run if plan]
    plans = sorted({plan for _, plan in planned}, key=SWEEP_PLAN_ORDER.index)
    text = f"`mixrepro sweep {' '.join(plans)}` trains them, e.g. `{planned[0][0]}`" if planned else ""
    unplanned = [(name, command) for name, command, plan in not_run if not plan]
    if unplanned:
        text += ("; " if text else "") + (f"no sweep plan holds {by_method([n for n, _ in unplanned])}: "
                                          f"`{unplanned[0][1]}` trains it")
    return text


SWEEP_PLAN_ORDER = ("study", "pages")  # the order a sweep of both plans takes


def sweep_plan_of(config) -> str | None:
    """The sweep plan that trains ``config`` at budget cpu (the study's own runs, then the runs the pages
    ask for beyond them), or None for a run neither plan holds."""
    from ..plans import in_pages_plan, in_study_plan

    if in_study_plan(config):
        return "study"
    return "pages" if in_pages_plan(config) else None


def by_method(names: list[str]) -> str:
    """['mixup seed 0', 'mixup seed 1', 'fmix seed 0'] -> 'mixup (seeds 0, 1), fmix (seed 0)'."""
    seeds: dict[str, list[str]] = {}
    for name in names:
        seeds.setdefault(method_of(name), []).append(name.rpartition(" seed ")[2])
    return ", ".join(f"{m} (seed{'s' if len(s) > 1 else ''} {', '.join(s)})" for m, s in seeds.items())


def methods_with_loss_option(methods: Iterable[str]) -> list[str]:
    """The given methods that take a ``loss`` parameter, i.e. can train with DM(CE) (DM_CE_PARAMS)."""
    from ..methods import METHODS

    return [m for m in methods if m in METHODS and "loss" in METHODS.get(m).default_params]


def dataset_label(dataset: str) -> str:
    """The label results must carry, e.g. 'CIFAR-10 (JPEG q75 copy)'."""
    from ..data import DATASETS

    return DATASETS.get(dataset).label


def needs(available, *methods: str, at_least: int = 0, missing: str | None = None) -> str | None:
    """Why a claim cannot be tested, or None: ``missing`` (runs absent here) first, then the named
    ``methods`` absent from ``available`` (a dict or collection of method names), then too few methods."""
    if missing:
        return missing
    absent = [m for m in methods if m not in available]
    if absent:
        return f"needs {', '.join(absent)}, which did not run"
    if len(available) < at_least:
        return f"needs at least {at_least} methods with runs ({len(available)} ran)"
    return None
