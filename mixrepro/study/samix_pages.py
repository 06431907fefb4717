"""The AMix / SAMix pages: Tables 1-5, 7-8 and Figures 2 (c), 4 and 5 of the AMix paper (ICLR 2022
submission, published later as SAMix; ``mixrepro.methods.samix``).

The pages share five pieces, kept here:

1. **The paper's arithmetic** (checks of kind "derivation", no training): the printed Gain rows and
   the gains the text quotes (:func:`gain_checks`, :func:`quoted_gain_checks`), Table 1's printed
   differences (:func:`delta_checks`), and orderings the text reads off a table
   (:func:`row_above_check`, :func:`best_row_checks`).
2. **Runs on the paper's own data**, one column at a time (:func:`paper_column_runs`): the column's
   dataset and backbone, its epochs, learning rate and batch only at budget ``paper``; absent data
   gives a reason and :func:`paper_cost` what the paper's protocol would cost.
3. **SAMix arms**: SAMix with one option changed (``method_params``), compared paired over seeds
   with the default (:func:`samix_arms`, :func:`arm_verdict`); runs the study plan does not
   contain are named so.
4. **Mask diagnostics** from the per-epoch logs every run stores (Fig. 4 page): the Mix Block's
   spatial mask spread and how its mask mean follows lambda (:func:`mask_stats`,
   :func:`lambda_stats`, :func:`plot_mask_diagnostics`).
5. **Cost per step** from the committed ``mixrepro bench`` report the study plan is built on
   (Fig. 5 page: :func:`bench_seconds`, :func:`pareto_checks`, :func:`plot_cost`).

The self-supervised pages (Tables 4-5, Fig. 2 (c)) test nothing: the instance-level AMix is not built;
:data:`INSTANCE_LEVEL_BUILD` says what it would take and :func:`ssl_cost` what pre-training costs.
"""
from __future__ import annotations

import math
import statistics
from typing import Callable, Sequence

from .collect import collect_runs, dataset_available, needs
from .display import fmt, markdown_table
from .costs import compute_text
from .dm_pages import arm_runs, figure, table_extras
from .facts import method_color, method_label, scored_network
from .paired import Check
from .paper_tables import PaperTable
from .scores import SeedStats, scored_stats
from .verdicts import Verdict, check_order, judge, leader_text, paper_values_text  # noqa: F401  (pages call sp.paper_values_text)

WINNER = "samix"
SMOKE_METHODS = ("vanilla", "mixup", "cutmix", "automix", "samix")
PAPER_SEEDS = 3  # "reported the mean of 3 trials" (section 4)
FLOAT_SLACK = 1e-9
# Training images of the paper's datasets this study cannot load (ImageNet-1k, ILSVRC-2012 train split).
IMAGES_NOT_REGISTERED = {"imagenet": 1_281_167}
EARLY_FRACTION = 0.1  # "unstable in the early training period" (section 3.2): the first 10 % of epochs
PERCENT = 100.0  # mask statistics in % of the mask's [0, 1] range, so the paired checks read in points


# ----------------------------------------------------------------------------- the paper's arithmetic


def within_rounding(value: float, printed: float, decimals: int = 2) -> bool:
    """Whether ``value`` rounds to ``printed`` (half a unit of the last printed digit, plus float noise)."""
    return abs(value - printed) <= 0.5 * 10 ** -decimals + FLOAT_SLACK


def best_other(table: PaperTable, column: str, winner: str = WINNER) -> str:
    """The row with the highest cell in ``column`` other than ``winner``."""
    rows = [m for m in table.rows if m != winner and table.value(m, column) is not None]
    return max(rows, key=lambda m: table.value(m, column))


def gain_checks(table: PaperTable, winner: str = WINNER) -> list[Check]:
    """'The printed Gain is the winner minus the best other row', one check per printed column."""
    checks = []
    for column, printed in table.printed_gain.items():
        other = best_other(table, column, winner)
        gain = table.value(winner, column) - table.value(other, column)
        outcome = "supports" if within_rounding(gain, printed) else "contradicts"
        checks.append(Check(f"{table.table} Gain under {table.columns[column]['label']} = {table.label(winner)} "
                            "minus the best other row", outcome,
                            f"printed {printed:+.2f}; {table.label(winner)} {table.value(winner, column):.2f} - "
                            f"{table.label(other)} {table.value(other, column):.2f} = {gain:+.2f}"))
    return checks


def quoted_gain_checks(table: PaperTable, winner: str = WINNER) -> list[Check]:
    """The gains the text quotes ('improved ... by 1.24% and 0.78%') against the table's cells."""
    checks = []
    for quote in table_extras(table.name).get("text_quotes", []):
        for column, quoted in quote["values"].items():
            gain = table.value(winner, column) - table.value(quote["over"], column)
            checks.append(Check(f"section {quote['section']}: {quoted:.2f}% over {table.label(quote['over'])} on "
                                f"{table.columns[column]['label']}",
                                "supports" if within_rounding(gain, quoted) else "contradicts",
                                f"table: {gain:+.2f}"))
    return checks


def only_above_check(table: PaperTable) -> list[Check]:
    """'X and Y are the only rows above Vanilla' (the transcription's ``only_above_vanilla``)."""
    spec = table_extras(table.name).get("only_above_vanilla")
    if not spec:
        return []
    base = table.value("vanilla", spec["column"])
    above = sorted(m for m in table.rows if m != "vanilla" and (table.value(m, spec["column"]) or -1) > base)
    outcome = "supports" if above == sorted(spec["methods"]) else "contradicts"
    return [Check(f"section {spec['section']}: \"{spec['quote']}\"", outcome,
                  f"rows above Vanilla ({base:.2f}) under {table.columns[spec['column']]['label']}: "
                  + ", ".join(f"{table.label(m)} {table.value(m, spec['column']):.2f}" for m in above))]


def delta_checks(table: PaperTable) -> list[Check]:
    """Table 1's small printed numbers are each cell minus its part's base row (CE (L) or BCE)."""
    extras = table_extras(table.name)
    checks = []
    for row, deltas in extras["printed_delta"].items():
        base = extras["delta_base"][row]
        for column, printed in deltas.items():
            delta = table.value(row, column) - table.value(base, column)
            checks.append(Check(f"{table.label(row)} − {table.label(base)} under {table.columns[column]['label']}",
                                "supports" if within_rounding(delta, printed) else "contradicts",
                                f"printed {printed:+.2f}; cells {delta:+.2f}"))
    return checks


def row_above_check(table: PaperTable, a: str, b: str, column: str) -> Check:
    """'Row a is above row b in ``column``' as printed."""
    va, vb = table.value(a, column), table.value(b, column)
    return Check(f"{table.label(a)} above {table.label(b)} ({table.columns[column]['label']})",
                 "supports" if va > vb else "contradicts", f"{va:.2f} vs {vb:.2f}")


def best_row_checks(table: PaperTable, winner: str, rows: Sequence[str], columns: Sequence[str] | None = None
                    ) -> list[Check]:
    """'``winner`` is the highest of ``rows``', one check per column where it has a cell."""
    checks = []
    for column in columns or table.columns:
        if table.value(winner, column) is None:
            continue
        others = [m for m in rows if m != winner and table.value(m, column) is not None]
        top = max(others, key=lambda m: table.value(m, column))
        check = row_above_check(table, winner, top, column)
        checks.append(Check(f"{table.label(winner)} highest of {len(others) + 1} rows "
                            f"({table.columns[column]['label']})", check.outcome,
                            f"{check.detail} (next: {table.label(top)})"))
    return checks


def cumulative_checks(table: PaperTable, column: str) -> list[Check]:
    """'Each added module raises the column' for a table whose rows each add one module (Table 8)."""
    rows = list(table.rows)
    return [row_above_check(table, after, before, column) for before, after in zip(rows, rows[1:])]


def shared_cells_markdown(table: PaperTable, other: PaperTable) -> str:
    """The cells ``table`` shares (same column id and row) with ``other``, where they differ."""
    shared = [(m, c) for c in table.columns if c in other.columns for m in table.rows
              if table.value(m, c) is not None and other.value(m, c) is not None]
    rows = [[table.label(m), table.columns[c]["label"], fmt(table.value(m, c)), fmt(other.value(m, c)),
             f"{table.value(m, c) - other.value(m, c):+.2f}"]
            for m, c in shared if table.value(m, c) != other.value(m, c)]
    head = (f"{len(shared) - len(rows)} of the {len(shared)} cells {table.table} shares with "
            f"{other.paper.split(' (')[0]} {other.table} are equal")
    if not rows:
        return head + "."
    return head + "; these differ:\n\n" + markdown_table(
        ["method", "column", table.table, f"{other.paper.split(' (')[0]} {other.table}", "difference"], rows)


# ----------------------------------------------------------------------------- runs on the paper's data


def paper_column_fields(params, spec: dict) -> dict:
    """Run fields for a paper column: its dataset and backbone; its epochs, lr, batch and weight decay only at
    budget 'paper' (other budgets keep theirs)."""
    fields = {"dataset": spec["dataset"], "model": spec["model"]}
    if params.budget == "paper":
        fields.update({k: spec[k] for k in ("epochs", "lr", "batch_size", "weight_decay") if k in spec})
    return fields


def paper_column_runs(params, table: PaperTable, columns: Sequence[str], methods: Sequence[str] | None = None,
                      log=None) -> dict[str, tuple[dict, str | None]]:
    """{column: (runs, reason)} on each column's own dataset and backbone (runs only where the data is)."""
    from ..data import DATASETS
    from ..models import MODELS

    found = {}
    for column in columns:
        spec = table.columns[column]
        if spec["dataset"] not in DATASETS.names() or spec["model"] not in MODELS.names():
            missing = spec["dataset"] if spec["dataset"] not in DATASETS.names() else spec["model"]
            found[column] = ({}, f"'{missing}' is not among the datasets and models this study can load or build")
            continue
        fields = paper_column_fields(params, spec)
        runs, reason = collect_runs(params, methods=methods, log=log, **fields)
        if reason and not runs and not dataset_available(spec["dataset"]):
            # One sentence per absent dataset, not one per method and seed.
            reason = (f"no runs on {DATASETS.get(spec['dataset']).label} are stored and the dataset is not "
                      "available to the study (see `mixrepro datasets` for how to obtain it)")
        found[column] = (runs, reason)
    return found


def dataset_images(dataset: str) -> int:
    """Training images of ``dataset`` (registered datasets from their spec)."""
    from ..data import DATASETS

    if dataset in IMAGES_NOT_REGISTERED:
        return IMAGES_NOT_REGISTERED[dataset]
    return DATASETS.get(dataset).num_train


def paper_cost(table: PaperTable, columns: Sequence[str], methods: int) -> str:
    """What the paper's protocol costs for ``columns`` with ``methods`` methods x 3 seeds: iterations, and
    GPU-hours where the columns are 32 px CIFAR (the reference logs time CIFAR ResNet-18 steps only)."""
    spec = table.columns[columns[0]]
    runs = methods * len(columns) * PAPER_SEEDS
    timed = spec["dataset"].startswith("cifar")
    note = (f"{methods} methods x {len(columns)} backbones x {PAPER_SEEDS} seeds at "
            f"{spec['epochs']} epochs, batch {spec['batch_size']}")
    if timed:
        note += ("; the rate is that of static mixers on ResNet-18: a Mix Block step costs about 3x (committed bench "
                 "report) and ResNeXt-50 more")
    else:
        note += "; not timed (larger images than the CIFAR steps the reference logs time)"
    if spec.get("pretrained"):
        note += f"; starts from {spec['pretrained']} weights, which cannot be downloaded here"
    return compute_text(runs, spec["epochs"], dataset_images(spec["dataset"]), spec["batch_size"], timed=timed,
                        note=note)


def imagenet_r50_cost(methods: int, epochs: int = 100, batch: int = 200) -> str:
    """What Fig. 5's ImageNet-1k ResNet-50 protocol costs for ``methods`` methods x 3 seeds (not timed)."""
    return compute_text(methods * PAPER_SEEDS, epochs, IMAGES_NOT_REGISTERED["imagenet"], batch, timed=False,
                        note=f"{methods} methods x {PAPER_SEEDS} seeds on ResNet-50 at 224 px; batch {batch}, the one "
                             "Table 3 states for ImageNet-1k (Fig. 5 states none)")


def column_winner_checks(table: PaperTable, column: str, runs: dict, winner: str = WINNER) -> list[Check]:
    """'winner beats each other method' on one paper column's own runs."""
    stats = scored_stats(runs)
    if winner not in stats:
        return []
    where = f" on {table.columns[column]['label']}"
    return [check_order(table.label(winner) + where, stats[winner], table.label(m), s, quantity="top-1")
            for m, s in stats.items() if m != winner]


def dataset_verdict(claim_id: str, claim: str, table: PaperTable, found: dict, columns: Sequence[str],
                    budget: str, methods: int) -> Verdict:
    """'AMix has the highest top-1' on a paper dataset's columns: not tested while runs are missing (the
    reason, then the paper protocol's cost)."""
    reasons = list(dict.fromkeys(found[c][1] for c in columns if found[c][1]))
    checks = [ch for c in columns for ch in column_winner_checks(table, c, found[c][0])]
    reason = "; ".join(reasons) or None
    ran = {m for c in columns for m in found[c][0]}
    return judge(claim_id, claim, table.reference(), budget, checks,
                 untested_reason=f"{reason}. At the paper's protocol: {paper_cost(table, columns, methods)}"
                 if reason else needs(ran, WINNER, at_least=2),
                 paper_value="; ".join(f"Gain {table.printed_gain[c]:+.2f} ({table.columns[c]['label']})"
                                       for c in columns if c in table.printed_gain),
                 runs=[r for c in columns for records in found[c][0].values() for r in records])


def implemented(table: PaperTable) -> list[str]:
    """The table's rows this study implements (the methods a paper-protocol rerun would train)."""
    from ..methods import METHODS

    return [m for m in table.rows if m in METHODS.names()]


# ----------------------------------------------------------------------------- stand-in rankings


def ours_markdown(runs: dict, setting: Callable[[str], str] = method_label) -> str:
    """Our runs, one row per group ({name: [records]}, methods or arms; ``setting`` labels a name): online and
    EMA top-1 (mean ± sd) and the network the papers score."""
    rows = []
    for name, records in runs.items():
        method = records[0].config.method
        online = SeedStats.over_runs(records, lambda r: r.summary["online"]["median_last10"])
        ema = SeedStats.over_runs(records, lambda r: r.summary["ema"]["median_last10"])
        rows.append([setting(name), online.text(), ema.text(), scored_network(method)])
    return markdown_table(["run", "ours: online", "ours: EMA", "scored network"], rows) if rows else \
        "(no runs of ours yet)"


def versus_checks(stats: dict[str, SeedStats], winner: str = WINNER, others: Sequence[str] = ()) -> list[Check]:
    """'winner beats each of ``others``' (every other method with runs when empty), paired over seeds."""
    if winner not in stats:
        return []
    return [check_order(method_label(winner), stats[winner], method_label(m), s, quantity="top-1")
            for m, s in stats.items() if m != winner and (not others or m in others)]


def ranking_verdict(claim_id: str, claim: str, source: str, params, runs: dict, missing: str | None,
                    winner: str = WINNER, others: Sequence[str] = (), paper_value: str = "", log=None) -> Verdict:
    """A '-c10' ranking claim on the stand-in data: ``winner`` beats every method of the page (``runs``,
    ``missing`` from collect_runs), or only ``others``, whose runs are then collected (and their reason
    kept) apart from the page's."""
    if others:
        runs, missing = collect_runs(params, methods=[winner, *others], log=log)
    stats = scored_stats(runs)
    ours = leader_text(winner, stats, method_label)
    return judge(claim_id, claim, source, params.budget, versus_checks(stats, winner, others),
                 untested_reason=needs(stats, winner, *others, at_least=2, missing=missing),
                 paper_value=paper_value, ours=ours, runs=runs)


def gain_range_text(*tables: PaperTable) -> str:
    """'Gain +0.05 to +1.40 over the best other row (Tables 2, 3)'."""
    gains = [g for t in tables for g in t.printed_gain.values()]
    names = ", ".join(t.table.replace("Table ", "") for t in tables)
    return f"Gain {min(gains):+.2f} to {max(gains):+.2f} over the best other row (Tables {names})"


# ----------------------------------------------------------------------------- SAMix arms


def samix_arms(params, arms: dict[str, dict], log=None) -> tuple[dict[str, list], dict[str, str]]:
    """({arm: [records]}, {arm: why its runs are missing}) for SAMix with each arm's ``method_params`` ({} =
    the defaults, the run every other page shares); arms the study plan does not train are named so."""
    found, reasons = {}, {}
    for arm, method_params in arms.items():
        runs, why = arm_runs(params, {WINNER: {arm: method_params}}, log=log)
        found.update(runs.get(WINNER, {}))
        if WINNER in why:
            reasons[arm] = why[WINNER].removeprefix(f"{arm}: ")
    return found, reasons


def alpha_arms(alphas: Sequence[float]) -> dict[str, dict]:
    """{'alpha=2': method_params} for SAMix at each mixing alpha; its default alpha shares the default run."""
    from ..methods import METHODS

    default = METHODS.get(WINNER).default_params["alpha"]
    return {f"alpha={a:g}": ({} if a == default else {"alpha": float(a)}) for a in alphas}


def arm_stats(found: dict[str, list]) -> dict[str, SeedStats]:
    """{arm: SeedStats of the scored (EMA) top-1}."""
    return {arm: scored_stats({WINNER: records})[WINNER] for arm, records in found.items()}


def pair_checks(stats: dict[str, SeedStats], pairs: Sequence[tuple[str, str]], names: dict[str, str]
                ) -> list[Check]:
    """'``better`` beats ``worse``' (paired over seeds) for each pair whose two sides ran."""
    return [check_order(names[b], stats[b], names[w], stats[w], quantity="top-1") for b, w in pairs
            if b in stats and w in stats]


def pairs_verdict(claim_id: str, claim: str, source: str, budget: str, found: dict, reasons: dict[str, str],
                  pairs: Sequence[tuple[str, str]], names: dict[str, str], paper_value: str = "") -> Verdict:
    """A claim made of 'x beats y' pairs over named run groups (``found``: {name: [records]}, SAMix arms or
    methods); not tested while a named group has no runs, with ``reasons[name]`` saying why."""
    stats = {name: scored_stats({records[0].config.method: records})[records[0].config.method]
             for name, records in found.items() if records}
    named = list(dict.fromkeys(n for pair in pairs for n in pair))
    absent = "; ".join(f"{names[n]}: {reasons.get(n, 'no runs')}" for n in named if n not in stats) or None
    ours = "; ".join(f"{names[n]} {stats[n].mean:.2f} (n={stats[n].n})" for n in named if n in stats)
    return judge(claim_id, claim, source, budget, pair_checks(stats, pairs, names), untested_reason=absent,
                 paper_value=paper_value, ours=ours, runs=[r for n in named for r in found.get(n, [])])


def arm_verdict(claim_id: str, claim: str, source: str, budget: str, found: dict, reasons: dict[str, str],
                better: str, worse: Sequence[str], names: dict[str, str], paper_value: str = "") -> Verdict:
    """A claim 'SAMix arm ``better`` gives a higher top-1 than each arm of ``worse``'."""
    return pairs_verdict(claim_id, claim, source, budget, found, reasons, [(better, w) for w in worse], names,
                         paper_value)


def arms_markdown(found: dict[str, list], names: dict[str, str], params_of: dict[str, dict]) -> str:
    """One row per arm: its option values and the scored top-1 (mean ± sd over seeds)."""
    stats = arm_stats(found)
    rows = [[names[a], ", ".join(f"{k}={v}" for k, v in params_of[a].items()) or "defaults",
             stats[a].text() if a in stats else "not run"] for a in names]
    return markdown_table(["arm", "SAMix options", "top-1 % (EMA)"], rows)


def plot_arms(found: dict[str, list], names: dict[str, str], title: str):
    """Top-1 per arm (mean, sd whisker, each seed a dot), SAMix's colour."""
    fig, (ax,) = figure(height=0.45 * len(names) + 1.2)
    stats = arm_stats(found)
    for y, arm in enumerate(names):
        if arm in stats:
            ax.barh(y, stats[arm].mean, xerr=stats[arm].std, color=method_color(WINNER), alpha=0.8)
            ax.plot(stats[arm].values, [y] * stats[arm].n, "k.", ms=4)
    ax.set_yticks(range(len(names)), list(names.values()), fontsize=7)
    ax.invert_yaxis()
    values = [v for s in stats.values() for v in s.values]
    if values:  # the differences are the point, not the accuracies
        ax.set_xlim(min(values) - 2, max(values) + 2)
    ax.set(xlabel="test top-1 (%), EMA network")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- mask diagnostics (Fig. 4)


def early_epochs(record) -> int:
    """How many first epochs count as 'early' (at least one)."""
    return max(1, round(EARLY_FRACTION * len(record.epochs)))


def mask_stats(runs: dict, column: str = "mask_std_gen", when: str = "last") -> dict[str, SeedStats]:
    """{method: SeedStats} of a per-epoch mask log in % of the mask's [0, 1] range: at the last epoch, or
    averaged over the early epochs; methods whose runs did not log ``column`` are left out."""
    def value(record, _method):
        curve = [v for v in record.curve(column) if v is not None]
        return PERCENT * (curve[-1] if when == "last" else statistics.fmean(curve[:early_epochs(record)]))

    logged = {m: rs for m, rs in runs.items() if all(r.epochs and r.epochs[0].get(column) is not None for r in rs)}
    return scored_stats(logged, value)


def lambda_stats(runs: dict, key: str) -> dict[str, SeedStats]:
    """{method: SeedStats} of the last epoch's lambda response: 'slope' and 'abs_gap' in %, 'correlation'."""
    from ..methods.mixblock import LAMRESP_M, lambda_response

    scale = 1.0 if key == "correlation" else PERCENT
    with_logs = {m: rs for m, rs in runs.items() if all(LAMRESP_M in r.epochs[-1] for r in rs)}
    return scored_stats(with_logs, lambda r, _m: scale * lambda_response(r.epochs[-1])[key])


def ignore_floor(runs: dict, method: str = WINNER) -> float:
    """E|m - lam| (in %) of the best lambda-blind mask, for ``method``'s Beta(alpha, alpha)."""
    from ..methods import METHODS
    from ..methods.mixblock import ignore_lambda_floor

    config = runs[method][0].config
    alpha = {**METHODS.get(method).default_params, **config.method_params}["alpha"]
    return PERCENT * ignore_lambda_floor(float(alpha))


def mask_markdown(runs: dict, floor: float | None) -> str:
    """Per method (mean ± sd over seeds): spatial mask sd early and at the end, the last epoch's lambda
    response (slope, correlation, E|m - lam| beside the lambda-blind floor) and share of saturated mask values."""
    columns = {"mask sd %, first 10 % of epochs": mask_stats(runs, when="early"),
               "mask sd %, last epoch": mask_stats(runs), "slope on λ (%)": lambda_stats(runs, "slope"),
               "correlation with λ": lambda_stats(runs, "correlation"),
               f"E|m − λ| % (λ-blind floor {fmt(floor)})": lambda_stats(runs, "abs_gap"),
               "saturated values %": mask_stats(runs, "mask_saturated")}
    rows = [[method_label(m)] + [cell_text(c.get(m)) for c in columns.values()] for m in runs]
    return markdown_table(["method", *columns], rows)


def cell_text(stats: SeedStats | None) -> str:
    """Mean ± sd with 3 decimals; 'not logged' for runs without the log, 'undefined' where a seed's value is NaN
    (a correlation with a mask mean that never varied)."""
    if stats is None:
        return "not logged"
    if any(math.isnan(v) for v in stats.values):
        return "undefined"
    return stats.text(3)


FIG4_PAPER_VALUE = "masks shown, no numbers (Fig. 4)"


def nontrivial_verdict(claim_id: str, claim: str, source: str, budget: str, runs: dict, missing: str | None
                       ) -> Verdict:
    """'Mix Block+ spreads its masks more than AutoMix's Mix Block', early in training and at the end."""
    phases = {"first 10 % of epochs": mask_stats(runs, when="early"), "last epoch": mask_stats(runs)}
    checks = [check_order(f"SAMix mask sd ({phase})", stats[WINNER], "AutoMix", stats["automix"], quantity="")
              for phase, stats in phases.items() if WINNER in stats and "automix" in stats]
    last = phases["last epoch"]
    return judge(claim_id, claim, source, budget, checks,
                 untested_reason=needs(last, WINNER, "automix", missing=missing),
                 paper_value=FIG4_PAPER_VALUE,
                 ours="; ".join(f"{method_label(m)} {s.mean:.2f} % (n={s.n}, last epoch)" for m, s in last.items()),
                 runs=runs)


def lambda_verdict(claim_id: str, claim: str, source: str, budget: str, runs: dict, missing: str | None
                   ) -> Verdict:
    """'SAMix's mask mean follows lambda': slope on lambda above 0, E|m - lam| below the lambda-blind floor."""
    slope, gap = lambda_stats(runs, "slope"), lambda_stats(runs, "abs_gap")
    checks = []
    if WINNER in slope:
        floor = ignore_floor(runs)
        checks = [check_order("SAMix slope on λ", slope[WINNER], "0", SeedStats.constant(0.0, slope[WINNER])),
                  check_order("SAMix E|m − λ|", gap[WINNER], f"the λ-blind floor {floor:.2f}",
                              SeedStats.constant(floor, gap[WINNER]), higher_is_better=False)]
    ours = f"slope {slope[WINNER].mean:.1f} %, E|m − λ| {gap[WINNER].mean:.2f} %" if WINNER in slope else ""
    return judge(claim_id, claim, source, budget, checks, untested_reason=needs(slope, WINNER, missing=missing),
                 paper_value=FIG4_PAPER_VALUE, ours=ours, runs={m: r for m, r in runs.items() if m == WINNER})


def plot_mask_diagnostics(runs: dict, floor: float | None = None):
    """Per epoch (seed mean, in %): the Mix Block mask's per-sample spatial sd (left) and E|m - lam| (right)."""
    fig, (left, right) = figure(ncols=2)
    for method, records in runs.items():
        for ax, column in ((left, "mask_std_gen"), (right, "lamresp_abs_gap")):
            curves = [r.curve(column) for r in records]
            points = [(e + 1, PERCENT * statistics.fmean(vs)) for e, vs in enumerate(zip(*curves)) if None not in vs]
            if points:
                ax.plot(*zip(*points), "-", marker=".", color=method_color(method), label=method_label(method))
    from matplotlib.ticker import MaxNLocator

    if floor is not None:
        right.axhline(floor, color="grey", ls="--", lw=1, label="λ-blind floor")
    left.set(xlabel="epoch", ylabel="spatial sd of the mask (%)", title="0 = constant (collapsed) mask")
    right.set(xlabel="epoch", ylabel="E|mask mean − λ| (%)", title="below the floor: the mask follows λ")
    for ax in (left, right):
        ax.title.set_fontsize(8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def initial_display_figure(seed: int = 0, n: int = 3):
    """Mix Block+ at initialisation (gamma 0, N(0, 0.01) weights) on the built-in synthetic images, drawn by
    ``mixrepro.visualize``: what the page would show for trained weights, which the store does not keep."""
    import torch

    from ..data import load_dataset
    from ..methods import build_method
    from ..models import build_model
    from ..visualize import mixed_samples_figure

    data = load_dataset("synthetic")
    x = data.test_x[:n].permute(0, 3, 1, 2).float() / 255
    model = build_model("resnet18", data.num_classes, width=0.25, generator=torch.Generator().manual_seed(seed))
    method = build_method(WINNER, model, data.num_classes, init_seed=seed).train()
    return mixed_samples_figure(method, x, data.test_y[:n], torch.Generator().manual_seed(seed), n=n)


# ----------------------------------------------------------------------------- cost (Fig. 5)


def bench_seconds() -> dict[str, float]:
    """{method: median seconds per training step} of the committed bench report the study plan uses
    (width-16 ResNet-18, batch 100, one CPU thread, bf16); DM variants left out."""
    from ..plans import load_bench_report, step_seconds

    return {m: s for m, s in step_seconds(load_bench_report()).items() if "+" not in m}


def bench_settings() -> str:
    """One line: what the committed bench report of the study plan timed (device, threads, precision, ...)."""
    from ..plans import load_bench_report
    from .automix_pages import bench_settings_text

    return bench_settings_text(load_bench_report())


def cost_markdown(seconds: dict[str, float], stats: dict[str, SeedStats]) -> str:
    """Per method: seconds per step, cost relative to Vanilla and to SAMix, and our top-1 where we have runs."""
    order = sorted(seconds, key=seconds.get)
    rows = [[method_label(m), f"{seconds[m]:.3f}", f"{seconds[m] / seconds['vanilla']:.2f}x",
             f"{seconds[m] / seconds[WINNER]:.2f}x", stats[m].text() if m in stats else "–"] for m in order]
    return markdown_table(["method", "seconds per step", "vs Vanilla", "vs SAMix", "top-1 % (scored network)"], rows)


def pareto_checks(stats: dict[str, SeedStats], seconds: dict[str, float], method: str = WINNER) -> list[Check]:
    """'``method`` beats every method whose step is cheaper' (nothing cheaper is also more accurate)."""
    if method not in stats:
        return []
    cheaper = [m for m in stats if m != method and m in seconds and seconds[m] < seconds[method]]
    return [check_order(method_label(method), stats[method], f"{method_label(m)} (cheaper step)", stats[m],
                        quantity="top-1") for m in cheaper]


def plot_cost(seconds: dict[str, float], stats: dict[str, SeedStats]):
    """Left: seconds per step of every method (bench report); right: top-1 against it for the methods we ran."""
    fig, (left, right) = figure(ncols=2)
    order = sorted(seconds, key=seconds.get)
    left.barh(range(len(order)), [seconds[m] for m in order], color=[method_color(m) for m in order])
    left.set_yticks(range(len(order)), [method_label(m) for m in order], fontsize=7)
    left.set(xlabel="seconds per training step", title="cost (committed bench report)")
    for method, s in stats.items():
        if method in seconds:
            right.errorbar(seconds[method], s.mean, yerr=s.std, fmt="o", color=method_color(method),
                           label=method_label(method))
    right.set(xlabel="seconds per training step", ylabel="test top-1 (%)", title="ours: accuracy vs cost")
    if right.has_data():
        right.legend(fontsize=6)
    else:
        right.text(0.5, 0.5, "no runs at this budget yet", ha="center", va="center", transform=right.transAxes)
    for ax in (left, right):
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Tables 4-5: not built

# MoCo v2's pre-training batch (section 4.2: "all the training and hyper-parameter configurations from MoCo.V2")
MOCO_BATCH = 256
SSL_PRETRAIN_IMAGES = {"stl10": 105_000, "tiny-imagenet": 100_000, "imagenet": 1_281_167}  # STL-10: unlabelled + train

INSTANCE_LEVEL_BUILD = (
    "the instance-level AMix, which this study does not build: a Method class in its own file on MoCo v2 (query "
    "and momentum key encoders, a 65,536-key queue, infoNCE at temperature 0.2, MoCo v2's augmentations) running "
    "the cross-view pipeline of Sec. 3.1 (one view's images mixed, contrasted with the other view's keys); Mix "
    "Block+ reused unchanged from mixrepro.methods.samix; as its generation loss infoNCE plus the non-parametric "
    "BCE of Eq. 6 (AMix-I), or CE on ODC pseudo labels (K = 200 clusters, an online clustering head) plus that "
    "BCE (AMix-C); then the linear-evaluation protocol (frozen backbone, 100 epochs of SGD, batch 256, lr 0.1, 30 "
    "on ImageNet, divided by 10 at epochs 30 and 60)")


def ssl_cost(dataset: str, epochs: int | None, runs: int, note: str = "") -> str:
    """Pre-training iterations of ``runs`` MoCo v2 runs on ``dataset`` (epochs None: the paper states none)."""
    per_epoch = math.ceil(SSL_PRETRAIN_IMAGES[dataset] / MOCO_BATCH)
    if epochs is None:
        return (f"{runs} pre-training run{'s' if runs != 1 else ''} of {per_epoch:,} iterations per epoch at batch "
                f"{MOCO_BATCH} (epochs not stated){'; ' + note if note else ''}")
    return compute_text(runs, epochs, SSL_PRETRAIN_IMAGES[dataset], MOCO_BATCH, timed=False, note=note)


# ----------------------------------------------------------------------------- Fig. 2 (c)


def intra_class_share(num_classes: int) -> float:
    """Share of pairs (sample, random partner) with the same class under balanced classes: 1 / K."""
    return 1.0 / num_classes


def intra_class_markdown(datasets: dict[str, int]) -> str:
    """{dataset label: classes} -> how often a random mixup pair is intra-class (balanced classes)."""
    rows = [[name, f"{k:,}", f"{100 * intra_class_share(k):.2g} %"] for name, k in datasets.items()]
    return markdown_table(["data", "classes (or instances)", "intra-class pairs"], rows)
