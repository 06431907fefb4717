"""Notebook helpers: parameters, paper numbers beside ours, verdicts, glue, book pages.

Every notebook of the study follows one pattern (book page "How to rerun"):

1. a ``parameters`` cell of plain assignments, validated by :func:`validate_parameters`;
2. runs from :func:`collect_runs` (``mixrepro.runs.train_or_load`` per method and
   seed), summarised over seeds by :func:`scored_stats` / :func:`evaluation_stats`;
3. the paper's numbers from ``mixrepro/paper_numbers/<paper>_<table>.json``
   (:func:`load_paper_table`) beside ours;
4. checks (:func:`check_order`, :func:`check_close`) turned into a verdict by the
   stated rule of :func:`decide_verdict`, recorded with :func:`record_verdicts`,
   from which ``mixrepro.book_build`` builds the claims ledger.

The verdict rule
----------------
A check compares two means over seeds. With ``k = 2`` and SE the standard error
of the difference (0 with one seed, which makes the check a sign test):

* ``check_order(a, b)`` passes when ``mean(a) - mean(b) > k * SE`` in the paper's
  direction, fails when it exceeds ``k * SE`` the other way (or is exactly 0 with one
  seed), and is inconclusive otherwise;
* ``check_close(ours, paper)`` passes when ``|mean - paper| <= max(k * SE, tol)``
  (tol 0.5 points by default) and fails otherwise. It is only made where our
  protocol equals the paper's (:func:`comparable_to_paper`).

The verdict of a claim (:func:`judge`): *not tested here* when the data, model or
method is unavailable (the reason is recorded), or when the claim needs trained
networks and the budget is ``smoke`` (two epochs on 1,000 images only show that
the code runs); otherwise *reproduced* if every check passes, *not reproduced* if
none passes, *partly* in between.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .config import BUDGETS, RunConfig, budget_deviations, config_for_budget
from .errors import InvalidParameterError, MixreproError

VERDICTS = ("reproduced", "partly", "not reproduced", "not tested here")
EVIDENCE_BUDGETS = ("cpu", "gpu", "paper")  # budgets whose numbers count as evidence
NETWORKS = ("online", "ema")
# The papers score the learned mixers' EMA ("momentum") network and the static
# methods' only network (REFERENCE.md section 1).
EMA_SCORED_METHODS = ("automix", "samix", "adautomix")
PAPER_NUMBERS_DIR = Path(__file__).resolve().parent / "paper_numbers"
VERDICTS_OUTPUT_KEY = "mixrepro_verdicts"  # output metadata key the claims ledger looks for
METHOD_LABELS = {"vanilla": "Vanilla", "mixup": "Mixup", "cutmix": "CutMix", "manifoldmix": "ManifoldMix",
                 "saliencymix": "SaliencyMix", "fmix": "FMix", "resizemix": "ResizeMix", "puzzlemix": "PuzzleMix",
                 "automix": "AutoMix", "samix": "SAMix", "adautomix": "AdAutoMix", "comixup": "Co-Mixup",
                 "augmix": "AugMix", "gridmix": "GridMix"}
K_SE = 2.0
DEFAULT_TOLERANCE = 0.5
SHARED_EVALUATIONS = ("ece", "fgsm")  # computed for every run, so notebooks share runs
DM_CE_PARAMS = {"loss": "dm_ce"}  # method_params that train a method with DM(CE) instead of MCE


# ----------------------------------------------------------------------------- parameters


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

    def config(self, method: str, seed: int, **fields) -> RunConfig:
        """The run for ``method`` and ``seed`` at this budget; ``fields`` override (e.g. method_params)."""
        return config_for_budget(self.budget, **{"method": method, "dataset": self.dataset, "model": self.model,
                                                 "seed": seed, **fields})

    def deviations(self, method: str | None = None) -> dict[str, tuple]:
        """{field: (ours, paper's)} for this budget (see mixrepro.config.budget_deviations)."""
        return budget_deviations(self.config(method or self.methods[0], self.seeds[0]))


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
    from .data import DATASETS
    from .methods import METHODS
    from .models import MODELS

    budget_spec = BUDGETS.get(budget)
    DATASETS.get(dataset)
    MODELS.get(model)
    if methods is None:
        methods = list(smoke_methods) if budget == "smoke" and smoke_methods else "all"
    if methods == "all":
        methods = [m for m in table_methods if m in METHODS] or METHODS.names()
    methods = _names_in("methods", methods, METHODS)
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
    return NotebookParameters(budget, dataset, model, methods, tuple(seeds), train, Path(results_dir))


def deviations_markdown(params: NotebookParameters, paper_protocol: dict | None = None) -> str:
    """A table of what this budget changes from the paper's protocol (never silent).

    ``paper_protocol``: {setting: the paper's value} where the table's protocol differs
    from the RunConfig defaults (e.g. ``{"epochs": 400, "dataset": "cifar100"}``).
    """
    config = params.config(params.methods[0], params.seeds[0]).to_dict()
    paper = {name: ref for name, (_, ref) in params.deviations().items()}
    paper.update(paper_protocol or {})
    rows = [[name, _fmt(config.get(name), none="all"), _fmt(ref, none="all")] for name, ref in paper.items()
            if config.get(name) != ref]
    if not rows:
        return "Our protocol equals the paper's."
    budget = BUDGETS.get(params.budget)
    return (f"Budget **{params.budget}** ({budget.description}); seeds {list(params.seeds)}.\n\n"
            + markdown_table(["setting", "ours", "paper"], rows))


# ----------------------------------------------------------------------------- paper numbers


@dataclass(frozen=True)
class PaperTable:
    """One transcribed table: ``rows[method][column]`` with the table reference and notes."""

    name: str
    paper: str
    paper_key: str
    table: str
    caption: str
    columns: dict
    rows: dict
    method_labels: dict
    notes: tuple[str, ...]
    higher_is_better: object = True
    printed_gain: dict = field(default_factory=dict)

    def value(self, method: str, column: str) -> float | None:
        return self.rows.get(method, {}).get(column)

    def label(self, method: str) -> str:
        return self.method_labels.get(method) or METHOD_LABELS.get(method, method)

    def reference(self) -> str:
        return f"{self.paper}, {self.table}"


def load_paper_table(name: str) -> PaperTable:
    """``mixrepro/paper_numbers/<name>.json`` as a :class:`PaperTable`."""
    path = PAPER_NUMBERS_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in PAPER_NUMBERS_DIR.glob("*.json"))
        raise InvalidParameterError("paper table", name, f"one of {known}")
    d = json.loads(path.read_text())
    return PaperTable(name=name, paper=d["paper"], paper_key=d["paper_key"], table=d["table"],
                      caption=d["caption"], columns=d["columns"], rows=d["rows"],
                      method_labels=d.get("method_labels", {}), notes=tuple(d.get("notes", ())),
                      higher_is_better=d.get("higher_is_better", True), printed_gain=d.get("printed_gain", {}))


def paper_table_markdown(table: PaperTable, columns: Sequence[str] | None = None, methods=None) -> str:
    """The paper's table as printed (selected columns), with its reference and transcription notes."""
    columns = list(columns or table.columns)
    methods = list(methods or table.rows)
    rows = [[table.label(m)] + [_fmt(table.value(m, c)) for c in columns] for m in methods]
    notes = "\n".join(f"- {n}" for n in table.notes)
    return (f"**{table.reference()}**: {table.caption}\n\n"
            + markdown_table(["method"] + [table.columns[c]["label"] for c in columns], rows)
            + (f"\n\nTranscription notes:\n\n{notes}" if notes else ""))


# ----------------------------------------------------------------------------- our numbers


@dataclass(frozen=True)
class SeedStats:
    """Mean, sample standard deviation and standard error over seeds (std, se = 0 for one seed)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n)

    def text(self, digits: int = 2) -> str:
        """'mean ± std (n=…)'; one seed shows the value alone."""
        if self.n == 1:
            return f"{self.mean:.{digits}f} (1 seed)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


def scored_network(method: str) -> str:
    """The network the papers score for ``method``: 'ema' for the learned mixers, else 'online'."""
    return "ema" if method in EMA_SCORED_METHODS else "online"


def run_top1(record, network: str, rule: str = "median_last10") -> float:
    """A run's scored top-1 (%) from its summary; the paper's rule by default."""
    if network not in NETWORKS:
        raise InvalidParameterError("network", network, f"one of {NETWORKS}")
    return float(record.summary[network][rule])


def run_evaluation(record, name: str, key: str, network: str) -> float:
    """One number of a stored evaluation, e.g. ``run_evaluation(r, 'fgsm', 'fgsm_error', 'ema')``."""
    try:
        return float(record.evaluations[network][name][key])
    except KeyError:
        raise MixreproError(f"run {record.config.key()} has no evaluation {name}/{key} for the {network} "
                            "network; pass evaluations=(...) to train_or_load") from None


def comparable_to_paper(config: RunConfig, column: dict) -> bool:
    """True when our run follows the paper column's protocol (data copy aside): model, epochs, full size."""
    return (config.width == 1.0 and config.train_subset is None and config.test_subset is None
            and config.epochs == column.get("epochs") and config.model == column.get("model"))


# ----------------------------------------------------------------------------- runs


def dataset_available(name: str, root=None) -> bool:
    """Whether a copy of dataset ``name`` is found under the data root (``mixrepro datasets``)."""
    from .data import describe_datasets

    rows = {row["name"]: row for row in describe_datasets(root)}
    if name not in rows:
        from .data import DATASETS

        DATASETS.get(name)  # UnknownNameError listing the known datasets
    return bool(rows[name]["available"])


def collect_runs(params: NotebookParameters, *, methods: Sequence[str] | None = None, dataset: str | None = None,
                 model: str | None = None, evaluations: Sequence[str] = SHARED_EVALUATIONS, log=None,
                 **fields) -> tuple[dict, str | None]:
    """Train-or-load every (method, seed) run: ({method: [RunRecord per seed]}, reason or None).

    A run that is not stored and whose dataset is absent here is left out, and the
    reason says so ('not tested here'); a missing run with ``train=False`` raises
    MissingRunError with the command that trains it. Every notebook asks for the
    same ``evaluations`` so a run trained for one serves all. Training progress goes
    to ``log``, by default the kernel's own stderr (the terminal that runs papermill
    or Jupyter), not into the notebook: a notebook's outputs are then the same whether
    it trained or loaded, which is what nbval compares.
    """
    import contextlib
    import sys

    from .results import ResultsStore
    from .runs import train_or_load

    def quietly(fn, *args, **kwargs):
        sink = log or sys.__stderr__
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return fn(*args, **kwargs)

    dataset = dataset or params.dataset
    can_train = params.train and dataset_available(dataset)
    store = ResultsStore(params.results_dir)
    runs: dict[str, list] = {}
    absent = []
    for method in methods or params.methods:
        records = []
        for seed in params.seeds:
            config = params.config(method, seed, **{"dataset": dataset, "model": model or params.model, **fields})
            if store.load(config) is None and not dataset_available(dataset):
                absent.append(f"{method} seed {seed}")
                continue
            records.append(quietly(train_or_load, config, results_root=params.results_dir, train=can_train,
                                   evaluations=tuple(evaluations)))
        if records:
            runs[method] = records
    reason = None
    if absent:
        reason = (f"dataset '{dataset}' is not available on this machine and no stored runs exist for "
                  f"{', '.join(absent)}; see `mixrepro datasets` for how to obtain it")
    return runs, reason


def methods_with_loss_option(methods: Iterable[str]) -> list[str]:
    """The given methods that take a ``loss`` parameter, i.e. can train with DM(CE) (DM_CE_PARAMS)."""
    from .methods import METHODS

    return [m for m in methods if m in METHODS and "loss" in METHODS.get(m).default_params]


def scored_stats(runs: dict, value_of=None) -> dict[str, SeedStats]:
    """{method: SeedStats} of the paper's score (median top-1 of the last 10 epochs, the scored network)."""
    value_of = value_of or (lambda record, method: run_top1(record, scored_network(method)))
    return {m: SeedStats(tuple(float(value_of(r, m)) for r in records)) for m, records in runs.items()}


def evaluation_stats(runs: dict, name: str, key: str, network: str | None = None) -> dict[str, SeedStats]:
    """{method: SeedStats} of one stored evaluation number, on the scored network unless ``network``."""
    return scored_stats(runs, lambda r, m: run_evaluation(r, name, key, network or scored_network(m)))


def confidence_gap(ece_result: dict, n_bins: int = 10) -> float:
    """Mean confidence minus accuracy in points (positive: over-confident), from a stored 'ece' evaluation."""
    diagram = ece_result[f"reliability_{n_bins}bins"]
    total = sum(diagram["count"])
    signed = sum(n * (conf - acc) for n, conf, acc in zip(diagram["count"], diagram["confidence"], diagram["accuracy"])
                 if n)
    return 100.0 * signed / total


def nearest_column(table: PaperTable, *, dataset: str, model: str, epochs: int) -> str:
    """The paper column for ``dataset`` (family: 'cifar10-jpeg' reads as 'cifar10') and ``model``
    whose epochs are closest to ours."""
    family = dataset.split("-jpeg")[0]
    candidates = [c for c, spec in table.columns.items() if spec["dataset"] == family and spec["model"] == model]
    if not candidates:
        raise InvalidParameterError("model/dataset", f"{model} on {dataset}",
                                    f"one of the {table.table} columns {sorted(table.columns)}")
    return min(candidates, key=lambda c: (abs(table.columns[c]["epochs"] - epochs), table.columns[c]["epochs"]))


def comparison_markdown(table: PaperTable, column: str, runs: dict, value_of=None, digits: int = 2,
                        paper_label: str | None = None) -> str:
    """Paper column beside ours (online, EMA, and the network the paper scores), mean ± std over seeds."""
    value_of = value_of or (lambda record, network: run_top1(record, network))
    rows = []
    for method in list(dict.fromkeys([m for m in table.rows if m in runs] + list(runs))):
        stats = {net: SeedStats(tuple(float(value_of(r, net)) for r in runs[method])) for net in NETWORKS}
        rows.append([table.label(method), _fmt(table.value(method, column)), stats["online"].text(digits),
                     stats["ema"].text(digits), scored_network(method)])
    header = [paper_label or f"paper ({table.columns[column]['label']})", "ours: online", "ours: EMA",
              "paper scores"]
    return markdown_table(["method"] + header, rows)


def winner_checks(winner: str, stats: dict[str, SeedStats], table: PaperTable, *, higher_is_better: bool = True,
                  unit: str = "points", quantity: str = "") -> list[Check]:
    """'winner beats each other method we ran' as ordering checks."""
    if winner not in stats:
        return []
    return [check_order(table.label(winner), stats[winner], table.label(m), s, higher_is_better=higher_is_better,
                        unit=unit, quantity=quantity) for m, s in stats.items() if m != winner]


def closeness_checks(table: PaperTable, column: str, stats: dict[str, SeedStats], runs: dict,
                     tolerance: float = DEFAULT_TOLERANCE) -> tuple[list[Check], str | None]:
    """check_close for each method with a paper number, or a reason why our protocol is not comparable."""
    spec = table.columns[column]
    config = next(iter(runs.values()))[0].config
    if not comparable_to_paper(config, spec):
        paper = {"width": 1.0, "train_subset": None, "test_subset": None, "epochs": spec["epochs"],
                 "model": spec["model"]}
        changed = ", ".join(f"{k} {_fmt(getattr(config, k), none='all')} (paper {_fmt(v, none='all')})"
                            for k, v in paper.items() if getattr(config, k) != v)
        return [], f"absolute numbers need the paper's protocol; our runs differ in: {changed}"
    checks = [check_close(table.label(m), s, table.value(m, column), tolerance=tolerance)
              for m, s in stats.items() if table.value(m, column) is not None]
    return checks, None


def dataset_label(dataset: str) -> str:
    """The label results must carry, e.g. 'CIFAR-10 (JPEG q75 copy)'."""
    from .data import DATASETS

    return DATASETS.get(dataset).label


# ----------------------------------------------------------------------------- figures


def method_color(method: str) -> str:
    """One colour per method, the same in every figure of the book."""
    names = list(METHOD_LABELS)
    return f"C{names.index(method) % 10}" if method in names else "k"


def _figure(width: float = 6.0, height: float = 3.2, ncols: int = 1):
    """A pyplot-free Figure: no global backend state, nothing shown until it is glued."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def plot_top1_curves(runs: dict, table: PaperTable | None = None):
    """Test top-1 per epoch of each method (seed mean): online solid, EMA dashed."""
    fig, (ax,) = _figure()
    for method, records in runs.items():
        color = method_color(method)
        for network, style in (("online", "-"), ("ema", "--")):
            curves = [r.curve(f"{network}_top1") for r in records]
            mean = [statistics.fmean(values) for values in zip(*curves)]
            label = (table.label(method) if table else method) if network == "online" else None
            ax.plot(range(1, len(mean) + 1), mean, style, color=color, marker=".", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("solid: online network, dashed: EMA network", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_reliability(runs: dict, n_bins: int = 10, table: PaperTable | None = None):
    """Reliability diagrams (seed 0, the scored network) with each method's ECE."""
    methods = list(runs)
    fig, axes = _figure(width=min(2.2 * len(methods), 11), height=2.6, ncols=len(methods))
    for ax, method in zip(axes, methods):
        record = runs[method][0]
        result = record.evaluations[scored_network(method)]["ece"]
        diagram = result[f"reliability_{n_bins}bins"]
        centres = [(lo + hi) / 2 for lo, hi in zip(diagram["bin_lower"], diagram["bin_upper"])]
        accuracy = [a if a is not None else 0.0 for a in diagram["accuracy"]]
        ax.bar(centres, accuracy, width=1 / n_bins, edgecolor="k", linewidth=0.5, label="accuracy")
        confidence = [(c, v) for c, v in zip(centres, diagram["confidence"]) if v is not None]
        ax.plot([c for c, _ in confidence], [v for _, v in confidence], "o", color="C1", ms=3, label="confidence")
        ax.plot([0, 1], [0, 1], "r-", lw=1)
        ax.set_title(f"{table.label(method) if table else method}\nECE {result[f'ece_percent_{n_bins}bins']:.1f}%",
                     fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("accuracy", fontsize=8)
    axes[0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_fgsm(clean: dict[str, SeedStats], fgsm_error: dict[str, SeedStats],
                          table: PaperTable | None = None, paper_columns: tuple[str, str] | None = None):
    """Clean top-1 against FGSM error: ours (filled) and, when given, the paper's (hollow)."""
    fig, axes = _figure(width=8 if paper_columns else 4.5, height=3.2, ncols=2 if paper_columns else 1)
    for method in clean:
        axes[0].errorbar(clean[method].mean, fgsm_error[method].mean, xerr=clean[method].std,
                         yerr=fgsm_error[method].std, fmt="o", color=method_color(method),
                         label=table.label(method) if table else method)
    axes[0].set_title("ours", fontsize=9)
    if paper_columns:
        acc_col, err_col = paper_columns
        for method in table.rows:
            axes[1].plot(table.value(method, acc_col), table.value(method, err_col), "o", mfc="none",
                         color=method_color(method), label=table.label(method))
        axes[1].set_title(f"paper ({table.table})", fontsize=9)
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("clean top-1 (%)")
        ax.set_ylabel("FGSM error (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- checks and verdicts


@dataclass(frozen=True)
class Check:
    """One testable statement and its outcome: 'pass', 'fail' or 'inconclusive'."""

    statement: str
    outcome: str
    detail: str


def check_order(name_a: str, a: SeedStats, name_b: str, b: SeedStats, *, higher_is_better: bool = True,
                k: float = K_SE, unit: str = "points", quantity: str = "") -> Check:
    """'a is better than b' (the paper's claim) against our means over seeds (module rule).

    ``higher_is_better=False`` states the claim as 'a is lower than b' (ECE, FGSM error);
    ``quantity`` names what is compared in the statement (e.g. 'FGSM error').
    """
    diff = (a.mean - b.mean) if higher_is_better else (b.mean - a.mean)
    se = math.hypot(a.se, b.se)
    if diff > k * se:
        outcome = "pass"
    elif diff < -k * se or diff == 0:
        outcome = "fail"
    else:
        outcome = "inconclusive"
    word = "higher" if higher_is_better else "lower"
    se_text = f"{k:g}·SE = {k * se:.2f}" if se > 0 else "one seed per method: sign only"
    subject = f"{name_a} {quantity}".strip()
    return Check(f"{subject} {word} than {name_b}", outcome,
                 f"{name_a} {a.mean:.2f} vs {name_b} {b.mean:.2f}: margin {diff:+.2f} {unit} ({se_text})")


def check_close(name: str, ours: SeedStats, paper: float, *, k: float = K_SE,
                tolerance: float = DEFAULT_TOLERANCE) -> Check:
    """Our mean within max(k·SE, tolerance) of the paper's number."""
    gap = ours.mean - paper
    bound = max(k * ours.se, tolerance)
    outcome = "pass" if abs(gap) <= bound else "fail"
    return Check(f"{name} matches the paper", outcome,
                 f"ours {ours.mean:.2f} vs paper {paper:.2f}: gap {gap:+.2f} (bound {bound:.2f})")


def check_not_worse(name_a: str, a: SeedStats, name_b: str, b: SeedStats, *, higher_is_better: bool = True,
                    tolerance: float = 1.0, k: float = K_SE, quantity: str = "") -> Check:
    """'a is no worse than b' (e.g. "keeps a competitive FGSM error"): a trails b by at most max(k·SE, tolerance)."""
    shortfall = (b.mean - a.mean) if higher_is_better else (a.mean - b.mean)
    bound = max(k * math.hypot(a.se, b.se), tolerance)
    outcome = "pass" if shortfall <= bound else "fail"
    return Check(f"{name_a} {quantity}".strip() + f" no worse than {name_b}", outcome,
                 f"{name_a} {a.mean:.2f} vs {name_b} {b.mean:.2f}: shortfall {shortfall:+.2f} (bound {bound:.2f})")


def check_identity(statement: str, max_abs_difference: float, tolerance: float = 1e-10) -> Check:
    """A numerical identity: passes when the largest absolute difference is within ``tolerance``."""
    # Rounding residuals differ between machines; the detail names only which side of the
    # tolerance they fall, so the recorded verdict is the same everywhere.
    if max_abs_difference <= tolerance:
        return Check(statement, "pass", f"max |difference| <= {tolerance:.0e}")
    return Check(statement, "fail", f"max |difference| = {max_abs_difference:.3g} > {tolerance:.0e}")


def check_symbolic(statement: str, differences) -> Check:
    """Symbolic identities: passes when sympy simplifies every ``lhs - rhs`` to exactly 0."""
    import sympy

    residuals = [sympy.simplify(d) for d in differences]
    nonzero = [r for r in residuals if r != 0]
    detail = (f"all {len(residuals)} residuals simplify to 0" if not nonzero
              else f"{len(nonzero)} of {len(residuals)} residuals do not vanish, e.g. {nonzero[0]}")
    return Check(statement, "pass" if not nonzero else "fail", detail)


def decide_verdict(checks: Sequence[Check]) -> str:
    """reproduced (every check passes), not reproduced (none passes), partly (in between)."""
    if not checks:
        raise InvalidParameterError("checks", checks, "at least one Check")
    passed = sum(c.outcome == "pass" for c in checks)
    if passed == len(checks):
        return "reproduced"
    return "not reproduced" if passed == 0 else "partly"


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict, as the claims ledger records it."""

    claim_id: str
    claim: str
    source: str
    verdict: str
    reason: str
    budget: str
    checks: tuple[Check, ...] = ()
    rule_outcome: str | None = None  # what the rule gives on these numbers, also when not counted

    def to_dict(self) -> dict:
        d = asdict(self)
        d["checks"] = [asdict(c) for c in self.checks]
        return d


def judge(claim_id: str, claim: str, source: str, budget: str, checks: Sequence[Check] = (),
          untested_reason: str | None = None, needs_training: bool = True) -> Verdict:
    """Apply the module's verdict rule; ``untested_reason`` (data, model, method absent) wins.

    ``needs_training=False`` for claims decided without trained networks (identities
    of the losses), which every budget can test.
    """
    BUDGETS.get(budget)
    checks = tuple(checks)
    outcome = decide_verdict(checks) if checks else None
    if untested_reason:
        return Verdict(claim_id, claim, source, "not tested here", untested_reason, budget, checks, outcome)
    if needs_training and budget not in EVIDENCE_BUDGETS:
        reason = (f"budget '{budget}' only shows that the pipeline runs; its numbers are not evidence. "
                  f"Rerun with budget 'cpu' or 'gpu' (the rule gives '{outcome}' on these numbers)")
        return Verdict(claim_id, claim, source, "not tested here", reason, budget, checks, outcome)
    if outcome is None:
        raise InvalidParameterError("checks", checks, "at least one Check, or an untested_reason")
    passed = sum(c.outcome == "pass" for c in checks)
    return Verdict(claim_id, claim, source, outcome, f"{passed} of {len(checks)} checks pass", budget, checks, outcome)


def checks_markdown(verdict: Verdict) -> str:
    rows = [[c.statement, c.outcome, c.detail] for c in verdict.checks]
    return markdown_table(["check", "outcome", "numbers"], rows) if rows else "(no checks: nothing to compare)"


def all_checks_markdown(verdicts: Sequence[Verdict]) -> str:
    """Every check of every claim, one row each."""
    rows = [[v.claim_id, c.statement, c.outcome, c.detail] for v in verdicts for c in v.checks]
    return markdown_table(["claim", "check", "outcome", "numbers"], rows) if rows else "(no checks were made)"


def verdicts_markdown(verdicts: Sequence[Verdict]) -> str:
    rows = [[v.claim_id, v.claim, f"**{v.verdict}**", v.reason] for v in verdicts]
    return markdown_table(["id", "claim", "verdict", "why"], rows)


def record_verdicts(notebook: str, verdicts: Sequence[Verdict]) -> None:
    """Show the verdicts and leave them in the notebook's outputs for the claims ledger.

    The JSON goes out as a display output tagged ``mixrepro_verdicts`` in its
    metadata; each verdict word is glued as ``verdict_<claim_id>`` for the prose.
    """
    from IPython.display import Markdown, display

    payload = {"notebook": notebook, "verdicts": [v.to_dict() for v in verdicts]}
    display({"application/json": payload, "text/markdown": verdicts_markdown(verdicts),
             "text/plain": json.dumps(payload, sort_keys=True, indent=1)},
            raw=True, metadata={VERDICTS_OUTPUT_KEY: True})
    for v in verdicts:
        glue(f"verdict_{v.claim_id}", Markdown(f"**{v.verdict}**"))
    glue("verdicts_table", Markdown(verdicts_markdown(verdicts)))
    glue("checks_table", Markdown(all_checks_markdown(verdicts)))


def read_verdicts(notebook_path) -> list[dict]:
    """The verdicts a notebook recorded in its outputs (empty when it has none)."""
    nb = json.loads(Path(notebook_path).read_text())
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get(VERDICTS_OUTPUT_KEY):
                found.extend(out["data"]["application/json"]["verdicts"])
    return found


# ----------------------------------------------------------------------------- display and glue


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value, digits: int = 2, none: str = "–") -> str:
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def glue(name: str, value, display: bool = False) -> None:
    """myst_nb.glue (imported here so the package does not need myst-nb to import)."""
    from myst_nb import glue as _glue

    _glue(name, value, display=display)


def glue_number(name: str, value: float, digits: int = 2) -> float:
    """Glue a number rounded to ``digits`` (the precision nbval checks and the prose shows)."""
    rounded = round(float(value), digits)
    glue(name, rounded)
    return rounded


def glue_figure(name: str, fig, dpi: int = 80) -> None:
    """Glue a matplotlib figure as a modest PNG for ``{glue:figure}`` (shown once, in the prose)."""
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    glue(name, Image(data=buffer.getvalue(), format="png"))


def glue_text(name: str, text: str) -> None:
    """Glue a string as markdown, for the inline ``{glue:md}`name``` role."""
    from IPython.display import Markdown

    glue(name, Markdown(text))


def show_markdown(text: str, glue_as: str | None = None) -> None:
    """Display markdown in the notebook; optionally glue it for the page's prose."""
    from IPython.display import Markdown, display

    if glue_as:
        glue(glue_as, Markdown(text))
    else:
        display(Markdown(text))


# ----------------------------------------------------------------------------- book pages


def notebook_title(notebook_path) -> str:
    """The first '# ' heading of a notebook's markdown, else its file name."""
    nb = json.loads(Path(notebook_path).read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(notebook_path).stem


def claims_ledger_markdown(notebook_paths: Iterable) -> str:
    """The claims-ledger page: one row per claim, grouped by notebook, from the recorded verdicts."""
    counts = {v: 0 for v in VERDICTS}
    sections = []
    for path in sorted(Path(p) for p in notebook_paths):
        verdicts = read_verdicts(path)
        if not verdicts:
            continue
        for v in verdicts:
            counts[v["verdict"]] += 1
        budgets = ", ".join(f"`{b}`" for b in dict.fromkeys(v["budget"] for v in verdicts))
        rows = [[v["claim_id"], f"{v['claim']} ({v['source']})", f"**{v['verdict']}**", v["reason"]]
                for v in verdicts]
        sections += [f"## [{notebook_title(path)}](notebooks/{path.stem}.ipynb)", "",
                     f"Executed at budget {budgets}.", "",
                     markdown_table(["id", "claim (source)", "verdict", "why"], rows), ""]
    total = sum(counts.values())
    summary = ", ".join(f"{n} {word}" for word, n in counts.items())
    return "\n".join([
        "# Claims ledger",
        "",
        "Every claim the notebooks test, one row each, collected from the verdicts the executed",
        "notebooks recorded (`mixrepro.report.record_verdicts`). The rule that turns numbers into",
        "a verdict is stated in `mixrepro.report` and on the [How to rerun](how_to_rerun.md) page.",
        "This page is generated by `python -m mixrepro.book_build`; do not edit it.",
        "",
        f"**{total} claims**: {summary}.",
        "",
        *sections,
    ])


def _environment_value(key: str, value) -> str:
    if key == "git" and isinstance(value, dict):
        commit = (value.get("commit") or "unknown")[:10]
        return f"{commit} (uncommitted changes)" if value.get("dirty") else commit
    return "–" if value is None else str(value)


def environment_markdown(results_root) -> str:
    """The environment page: what every committed run recorded, shared fields once, the rest per run."""
    root = Path(results_root)
    runs = {}
    for env_file in sorted(root.glob("*/*/*/environment.json")):
        if not env_file.parent.name.startswith("."):
            run = "/".join(env_file.parent.parts[-3:])
            env = json.loads(env_file.read_text())
            runs[run] = {k: _environment_value(k, v) for k, v in env.items() if k != "argv0"}
    lines = ["# Environment", "",
             "What the committed runs in `notebooks/results/` ran on, as each run's `environment.json`",
             "recorded it (software versions, device, code revision). This page is generated by",
             "`python -m mixrepro.book_build`.", ""]
    if not runs:
        return "\n".join(lines + ["No committed runs yet.", ""])
    keys = list(dict.fromkeys(k for env in runs.values() for k in env))
    shared = [k for k in keys if len({env.get(k, "–") for env in runs.values()}) == 1]
    varying = [k for k in keys if k not in shared]
    lines += [f"## Shared by all {len(runs)} runs", "",
              markdown_table(["field", "value"], [[k, next(iter(runs.values())).get(k, "–")] for k in shared]), ""]
    if varying:
        lines += ["## Per run", "",
                  markdown_table(["run (dataset/method/key)"] + varying,
                                 [[f"`{run}`"] + [env.get(k, "–") for k in varying] for run, env in runs.items()]),
                  ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Decoupled Mixup propositions


def dm_symbolic_checks(num_classes: int = 4) -> dict[str, list[Check]]:
    """Propositions 1 and 2 of Decoupled Mixup in sympy, for classes a = 0, b = 1 of ``num_classes``.

    Returns {'prop1': [...], 'prop2': [...]}: each Check is an identity that sympy
    simplifies to 0 (or fails to).
    """
    import sympy as sp

    if not (isinstance(num_classes, int) and num_classes >= 3):
        raise InvalidParameterError("num_classes", num_classes, "an integer >= 3 (two mixed classes and another)")
    z = sp.symbols(f"z0:{num_classes}", real=True)
    lam = sp.Symbol("lambda", positive=True)
    a, b, classes = 0, 1, range(num_classes)
    e = [sp.exp(zi) for zi in z]
    total = sum(e)
    p = [ei / total for ei in e]
    y = [lam if l == a else 1 - lam if l == b else 0 for l in classes]
    mce = -sum(y[l] * sp.log(p[l]) for l in classes)
    prop1 = [check_symbolic("dL_MCE/dz_l = p_l - y_l for every class l",
                            [sp.diff(mce, z[l]) - (p[l] - y[l]) for l in classes])]

    def decoupled(i, j):  # -log of the softmax of class i over every class but j
        return -sp.log(e[i] / (total - e[j]))

    def q_without(j, l):
        return 0 if l == j else e[l] / (total - e[j])

    l_a, l_b = decoupled(a, b), decoupled(b, a)
    delta = [[1 if l == i else 0 for l in classes] for i in classes]
    prop2 = [
        check_symbolic("decoupled softmax e^{z_a} / sum_{k != b} e^{z_k} = p_a / (1 - p_b) (and a<->b)",
                       [e[a] / (total - e[b]) - p[a] / (1 - p[b]), e[b] / (total - e[a]) - p[b] / (1 - p[a])]),
        check_symbolic("dl_a/dz_l = q^(-b)_l - [l = a] (q^(-b): softmax without class b)",
                       [sp.diff(l_a, z[l]) - (q_without(b, l) - delta[a][l]) for l in classes]),
        check_symbolic("dl_a/dz_b = 0: raising the partner's logit never raises l_a (mutual boosting)",
                       [sp.diff(l_a, z[b]), sp.diff(l_b, z[a])]),
        check_symbolic("the decoupled part's gradient does not depend on lambda (no lambda constraint)",
                       [sp.diff(sp.diff(l_a + l_b, z[l]), lam) for l in classes]),
    ]
    return {"prop1": prop1, "prop2": prop2}


def random_mixed_logits(batch: int = 64, num_classes: int = 10, seed: int = 0):
    """float64 logits [B, C] and a two-source MixTarget with random pairs and per-sample lambdas."""
    import torch

    from .mixers.base import MixTarget

    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, num_classes, generator=g, dtype=torch.float64)
    y = torch.randint(num_classes, (batch,), generator=g)
    partner = y[torch.randperm(batch, generator=g)]
    lam = torch.rand(batch, generator=g, dtype=torch.float64)
    return logits, MixTarget(torch.stack([y, partner], 1), torch.stack([lam, 1 - lam], 1))


def dm_autograd_checks(batch: int = 64, num_classes: int = 10, seed: int = 0, tolerance: float = 1e-10
                       ) -> dict[str, list[Check]]:
    """Propositions 1 and 2 against autograd on random float64 logits, via mixrepro.losses' helpers."""
    import torch

    from .losses import (decoupled_log_odds_form, decoupled_logit_gradient, decoupled_terms, dm_ce,
                         dm_ce_logit_gradient, mce_logit_gradient, soft_ce)
    from .mixers.base import MixTarget

    logits, target = random_mixed_logits(batch, num_classes, seed)
    two_class = target.labels[:, 0] != target.labels[:, 1]

    def autograd(loss_fn):  # per-sample gradient of a batch-mean loss: B * d(mean)/dz
        z = logits.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(z), z)
        return batch * grad

    def max_diff(u, v):
        return float((u - v).abs().max())

    other_lam = torch.rand(batch, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    relabelled = MixTarget(target.labels, torch.stack([other_lam, 1 - other_lam], 1))
    l_a_of = lambda z: decoupled_terms(z, target)[two_class, 0].sum()  # noqa: E731
    z = logits.clone().requires_grad_(True)
    (grad_l_a,) = torch.autograd.grad(l_a_of(z), z)
    partner_grad = grad_l_a[two_class].gather(1, target.labels[two_class, 1:2])
    prop1 = [check_identity("autograd of MCE = p - y (mce_logit_gradient)",
                            max_diff(autograd(lambda z: soft_ce(z, target)), mce_logit_gradient(logits, target)),
                            tolerance)]
    prop2 = [
        check_identity("decoupled softmax terms = -log(p_a / (1 - p_b)) form (two-class rows)",
                       max_diff(decoupled_terms(logits, target)[two_class],
                                decoupled_log_odds_form(logits, target)[two_class]), tolerance),
        check_identity("autograd of DM(CE), eta = 1 = dm_ce_logit_gradient",
                       max_diff(autograd(lambda z: dm_ce(z, target, eta=1.0)),
                                dm_ce_logit_gradient(logits, target, eta=1.0)), tolerance),
        check_identity("autograd dl_a/dz_b = 0 (two-class rows)", float(partner_grad.abs().max()), tolerance),
        check_identity("decoupled gradient unchanged when every lambda is redrawn",
                       max_diff(decoupled_logit_gradient(logits, target)[two_class],
                                decoupled_logit_gradient(logits, relabelled)[two_class]), tolerance),
    ]
    return {"prop1": prop1, "prop2": prop2}


def lambda_sensitivity(batch: int = 64, num_classes: int = 10, seed: int = 0) -> dict[str, float]:
    """How far the MCE and the decoupled gradients move when lambda is redrawn (the contrast of Prop. 2)."""
    import torch

    from .losses import decoupled_logit_gradient, mce_logit_gradient
    from .mixers.base import MixTarget

    logits, target = random_mixed_logits(batch, num_classes, seed)
    two_class = target.labels[:, 0] != target.labels[:, 1]
    other_lam = torch.rand(batch, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    relabelled = MixTarget(target.labels, torch.stack([other_lam, 1 - other_lam], 1))
    return {
        "mce": float((mce_logit_gradient(logits, target) - mce_logit_gradient(logits, relabelled))[two_class]
                     .abs().max()),
        "decoupled": float((decoupled_logit_gradient(logits, target) - decoupled_logit_gradient(logits, relabelled))
                           [two_class].abs().max()),
    }
