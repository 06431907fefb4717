"""The AdAutoMix (ICLR 2024) pages: Tables 1-11 and Figures 5, 6, 10-14.

What the pages share, kept here:

1. **Opening a page** whose transcription may have no cells (Tables 4 and 5 are missing from
   our copy of the paper, the figures are only plotted): :func:`open_page` takes the methods
   from the transcription's ``methods`` field then.
2. **The paper's own arithmetic**: printed Gain rows and the gains the text quotes, re-derived
   from the transcribed cells (:func:`printed_gain_checks`, :func:`quoted_gain_checks`,
   :func:`same_cells_checks`, :func:`best_everywhere_checks`).
3. **Rankings on the CIFAR-10 copy** ("-c10" claims): AdAutoMix against each other method on
   the stand-in data (:func:`winner_checks`), for top-1, occlusion, corruption, FGSM and ECE.
4. **Claims on the paper's data**: runs per paper column where its data and model exist here,
   else *not tested here* with what the paper's protocol would cost (:func:`column_runs`,
   :func:`paper_data_verdict`).
5. **AdAutoMix's own arms** (lambda, N, alpha, beta, the loss terms, the adversarial ascent):
   method_params per arm, the default arm sharing the plain AdAutoMix run
   (:func:`arm_params`, :func:`collect_arms`, :func:`preferred_checks`).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import InvalidParameterError
from ..plans import step_seconds
from .collect import SHARED_EVALUATIONS, collect_runs, dataset_available, needs
from .display import fmt, markdown_table
from .costs import compute_text
from .dm_pages import figure
from .facts import method_color, method_label, scored_network
from .figures import label_axes
from .paired import ALPHA, Check
from .paper_tables import PAPER_NUMBERS_DIR, PaperTable, load_paper_table
from .parameters import NotebookParameters, arm_parameters, validate_parameters
from .scores import SeedStats, evaluation_stats, scored_stats
from .verdicts import Verdict, check_order, judge, leader_text

WINNER = "adautomix"
SMOKE_METHODS = ("vanilla", "mixup", "cutmix", "automix", "adautomix")
# Every page asks for the shared evaluations too, so a run evaluated for one page serves all.
CORRUPTION_EVALUATIONS = SHARED_EVALUATIONS + ("corruption",)
OCCLUSION_EVALUATIONS = SHARED_EVALUATIONS + ("occlusion",)
FLOAT_SLACK = 1e-9  # float noise on top of half a unit of the last printed digit
STAND_IN = " (CIFAR-10 copy as a stand-in for {data})"


def stand_in(data: str) -> str:
    """' (CIFAR-10 copy as a stand-in for CIFAR-100)': the suffix every '-c10' claim carries."""
    return STAND_IN.format(data=data)


# ----------------------------------------------------------------------------- opening a page


def extras(name: str) -> dict:
    """The whole transcription, with the fields PaperTable does not carry (quoted gains, methods...)."""
    return json.loads((PAPER_NUMBERS_DIR / f"{name}.json").read_text())


def open_page(name: str, *, budget: str, dataset: str, model: str, methods=None, seeds=None, train: bool = True,
              results_dir="results", smoke_methods: Sequence[str] = SMOKE_METHODS
              ) -> tuple[PaperTable, NotebookParameters]:
    """(paper table, validated parameters), printed; 'all' methods are the table's rows, or its ``methods``
    field where the table has no transcribed cells."""
    table = load_paper_table(name)
    table_methods = list(table.rows) or extras(name).get("methods", [])
    params = validate_parameters(budget=budget, dataset=dataset, model=model, methods=methods, seeds=seeds,
                                 train=train, results_dir=results_dir, smoke_methods=smoke_methods,
                                 table_methods=table_methods)
    print(params)
    return table, params


def ours_markdown(runs: dict, label: Callable[[str], str], value_of=None) -> str:
    """Our top-1 per method: online, EMA and the network the paper scores (mean ± sd over seeds)."""
    from ..results import NETWORKS
    from .scores import run_top1

    value_of = value_of or run_top1
    rows = []
    for method, records in runs.items():
        stats = {net: SeedStats.over_runs(records, lambda r, net=net: value_of(r, net)) for net in NETWORKS}
        rows.append([label(method), stats["online"].text(), stats["ema"].text(), scored_network(method)])
    return markdown_table(["method", "ours: online", "ours: EMA", "scored network"], rows)


# ----------------------------------------------------------------------------- the paper's arithmetic


def _within_rounding(value: float, printed: float, digits: int = 2) -> bool:
    return abs(value - printed) <= 0.5 * 10 ** -digits + FLOAT_SLACK


def best_other(table: PaperTable, column: str, winner: str = WINNER) -> tuple[str, float]:
    """(method, value) of the best row other than ``winner`` in ``column`` (lowest when lower is better)."""
    others = {m: table.value(m, column) for m in table.rows if m != winner and table.value(m, column) is not None}
    pick = max if table.higher_is_better else min
    method = pick(others, key=others.get)
    return method, others[method]


def _margin(table: PaperTable, column: str, over: str, winner: str = WINNER) -> tuple[float, str]:
    """(winner minus ``over``, the name of what it is over); ``over`` a method or 'best_other'."""
    if over == "best_other":
        method, value = best_other(table, column, winner)
    else:
        method, value = over, table.value(over, column)
    return table.value(winner, column) - value, table.label(method)


def printed_gain_checks(table: PaperTable, winner: str = WINNER) -> list[Check]:
    """'The printed Gain is the winner minus the best other row', one check per printed column."""
    checks = []
    for column, printed in table.printed_gain.items():
        gain, over = _margin(table, column, "best_other", winner)
        checks.append(Check(f"{table.table} Gain under {table.columns[column]['label']} = {table.label(winner)} "
                            f"- best other", "supports" if _within_rounding(gain, printed) else "contradicts",
                            f"printed {printed:+.2f}; cells give {gain:+.2f} (over {over})"))
    return checks


def quoted_gain_checks(table: PaperTable) -> list[Check]:
    """'The gains the text quotes are the table's', from the transcription's ``quoted_gains``."""
    checks = []
    for quote in extras(table.name).get("quoted_gains", []):
        found = [_margin(table, c, quote["over"]) for c in quote["columns"]]
        ok = all(_within_rounding(gain, value) for (gain, _), value in zip(found, quote["values"]))
        quoted = ", ".join(f"{v:g}" for v in quote["values"])
        cells = ", ".join(f"{g:+.2f} (over {o})" for g, o in found)
        checks.append(Check(f"Sec. {quote['section']}: \"{quote['quote']}\" (quoted {quoted})",
                            "supports" if ok else "contradicts", f"cells: {cells}"))
    return checks


def same_cells_checks(table: PaperTable) -> list[Check]:
    """'The shared baseline cells are another table's' (``same_cells_as``): one check per column pair."""
    spec = extras(table.name).get("same_cells_as")
    if not spec:
        return []
    other = load_paper_table(spec["table"])
    checks = []
    for column, other_column in spec["columns"].items():
        shared = [m for m in table.rows if m != WINNER and other.value(m, other_column) is not None]
        differ = [m for m in shared if table.value(m, column) != other.value(m, other_column)]
        detail = (f"all {len(shared)} shared methods equal" if not differ
                  else f"{len(differ)} of {len(shared)} differ: {', '.join(table.label(m) for m in differ)}")
        checks.append(Check(f"{short_name(table)} {table.table} {table.columns[column]['label']} baselines = "
                            f"{short_name(other)} {other.table} {other.columns[other_column]['label']}",
                            "supports" if not differ else "contradicts", detail))
    return checks


def short_name(table: PaperTable) -> str:
    """'AutoMix' for 'AutoMix (Liu, Li et al., ECCV 2022)'."""
    return table.paper.split(" (")[0]


def best_everywhere_checks(table: PaperTable, columns: Sequence[str] | None = None,
                           winner: str = WINNER) -> list[Check]:
    """'The winner's cell is the best of its column', per column (ties count as best, and are named)."""
    checks = []
    for column in columns or list(table.columns):
        method, value = best_other(table, column, winner)
        ours = table.value(winner, column)
        margin = ours - value if table.higher_is_better else value - ours
        tie = " (a tie)" if abs(margin) < FLOAT_SLACK else ""
        checks.append(Check(f"{table.table}: {table.label(winner)} best under {table.columns[column]['label']}",
                            "supports" if margin >= -FLOAT_SLACK else "contradicts",
                            f"{table.label(winner)} {ours:.2f} vs best other {table.label(method)} {value:.2f}{tie}"))
    return checks


def row_best_checks(table: PaperTable, preferred: dict[str, str]) -> list[Check]:
    """'The preferred column is the best of its row' ({row: column}), e.g. lambda = 1 in Table 9."""
    checks = []
    for row, column in preferred.items():
        others = {c: v for c, v in table.rows[row].items() if c != column}
        best = max(others, key=others.get)
        value = table.value(row, column)
        checks.append(Check(f"{table.table}: {table.columns[column]['label']} best for {table.label(row)}",
                            "supports" if value >= others[best] else "contradicts",
                            f"{value:.2f} vs next best {table.columns[best]['label']} {others[best]:.2f}"))
    return checks


def table1_consistency_checks(table9: PaperTable, table10: PaperTable) -> list[Check]:
    """Tables 9 and 10 at their defaults against Table 1's CIFAR-100 cells (same network, same setting)."""
    table1 = load_paper_table("adautomix_table1")
    pairs = [(f"{table9.table} R-18 lambda = 1", table9.value("r18", "lam_1"), WINNER, "c100_r18"),
             (f"{table9.table} RX-50 lambda = 1", table9.value("rx50", "lam_1"), WINNER, "c100_rx50"),
             (f"{table10.table} N = 3", table10.value("n3", "top1"), WINNER, "c100_r18"),
             (f"{table10.table} N = 1", table10.value("n1", "top1"), "vanilla", "c100_r18")]
    return [cell_equals_check(f"{name} = {table1.table} {table1.label(method)} {table1.columns[column]['label']}",
                              value, table1.value(method, column)) for name, value, method, column in pairs]


def increasing_checks(table: PaperTable, rows: Sequence[str], column: str) -> list[Check]:
    """'Each row improves on the one before' (an ablation adding one term per row)."""
    checks = []
    for before, after in zip(rows, rows[1:]):
        a, b = table.value(before, column), table.value(after, column)
        checks.append(Check(f"{table.table}: {table.label(after)} above {table.label(before)}",
                            "supports" if b > a else "contradicts", f"{b:.2f} vs {a:.2f} ({b - a:+.2f})"))
    return checks


def cell_equals_check(statement: str, value: float, other: float) -> Check:
    """One printed cell against another table's (transcription cross-checks)."""
    return Check(statement, "supports" if value == other else "contradicts", f"{value:.2f} vs {other:.2f}")


# ----------------------------------------------------------------------------- rankings on our runs


def winner_checks(stats: dict[str, SeedStats], label: Callable[[str], str], *, winner: str = WINNER,
                  higher_is_better: bool = True, quantity: str = "top-1", where: str = "",
                  against: Sequence[str] | None = None) -> list[Check]:
    """'winner beats each other method' (paired over seeds), optionally only ``against`` some methods."""
    if winner not in stats:
        return []
    others = [m for m in (against or stats) if m != winner and m in stats and stats[m].shares_seeds(stats[winner])]
    return [check_order(f"{label(winner)}{where}", stats[winner], label(m), stats[m],
                        higher_is_better=higher_is_better, quantity=quantity) for m in others]


def stats_text(stats: dict[str, SeedStats], label: Callable[[str], str], suffix: str = "") -> str:
    """Short 'ours' text for a verdict: 'AdAutoMix 80.10; AutoMix 79.60' (seed means)."""
    return "; ".join(f"{label(m)} {s.mean:.2f}{suffix}" for m, s in stats.items())


def ranking_verdict(claim_id: str, claim: str, source: str, budget: str, stats: dict[str, SeedStats],
                    runs: dict, missing: str | None, label: Callable[[str], str], paper_value: str = "",
                    **kwargs) -> Verdict:
    """A '-c10' claim 'AdAutoMix beats each other method' on the stand-in data (kwargs: winner_checks');
    ``paper_value``: the paper's numbers it rests on (e.g. ``verdicts.paper_winner_text``)."""
    checks = winner_checks(stats, label, **kwargs)
    ours = leader_text(WINNER, stats, label, higher_is_better=kwargs.get("higher_is_better", True))
    return judge(claim_id, claim, source, budget, checks,
                 untested_reason=needs(stats, WINNER, at_least=2, missing=missing), paper_value=paper_value,
                 ours=ours, runs=runs)


# ----------------------------------------------------------------------------- the paper's data


@dataclass(frozen=True)
class ColumnRuns:
    """Our runs for one paper column (its data and model), and why some are missing."""

    runs: dict
    reason: str | None


def column_fields(params: NotebookParameters, spec: dict) -> dict:
    """Run fields for a paper column: its data and model; its epochs, lr, batch size and weight decay only at
    budget 'paper' (other budgets keep theirs)."""
    fields = {"dataset": spec["dataset"], "model": spec["model"]}
    if params.budget == "paper":
        fields.update({k: spec[k] for k in ("epochs", "lr", "batch_size", "weight_decay") if k in spec})
    return fields


def unavailable(spec: dict) -> str | None:
    """Why a column cannot run here at all: its dataset or model is not implemented (None when both are)."""
    from ..data import DATASETS
    from ..models import MODELS

    absent = []
    if spec["dataset"] not in DATASETS.names():
        absent.append(f"dataset '{spec['dataset']}'")
    if spec["model"] not in MODELS.names():
        absent.append(f"model '{spec['model']}'")
    return f"{' and '.join(absent)} not implemented in this study" if absent else None


def column_runs(params: NotebookParameters, table: PaperTable, columns: Sequence[str],
                evaluations: Sequence[str] = SHARED_EVALUATIONS, log=None) -> dict[str, ColumnRuns]:
    """{column: ColumnRuns} on each column's own data and model, for the table's implemented methods."""
    from ..methods import METHODS

    methods = [m for m in table.rows if m in METHODS.names()]
    found = {}
    for column in columns:
        spec = table.columns[column]
        reason = unavailable(spec)
        found[column] = ColumnRuns({}, reason) if reason else dataset_runs(
            params, methods, evaluations=evaluations, log=log, **column_fields(params, spec))
    return found


def dataset_runs(params: NotebookParameters, methods: Sequence[str], *, dataset: str,
                 evaluations: Sequence[str] = SHARED_EVALUATIONS, log=None, **fields) -> ColumnRuns:
    """collect_runs on another dataset; one sentence when the dataset is absent and nothing is stored."""
    from ..data import DATASETS

    runs, reason = collect_runs(params, methods=methods, evaluations=evaluations, log=log, dataset=dataset, **fields)
    if reason and not runs and not dataset_available(dataset):
        # One sentence per absent dataset, not one per method and seed.
        reason = (f"no runs on {DATASETS.get(dataset).label} are stored and the dataset is not available to the "
                  "study (see `mixrepro datasets` for how to obtain it)")
    return ColumnRuns(runs, reason)


def top1_checks(runs: dict, label: Callable[[str], str], where: str = "") -> list[Check]:
    """'AdAutoMix has the highest scored top-1' against each other method of ``runs``."""
    return winner_checks(scored_stats(runs), label, where=where)


def paper_data_verdict(claim_id: str, claim: str, table: PaperTable, by_column: dict[str, ColumnRuns],
                       budget: str, cost: str, checks_of: Callable = top1_checks) -> Verdict:
    """'AdAutoMix beats every other method' on the paper's own columns (``checks_of(runs, label, where)``
    makes the checks): not tested here while runs are missing (the reasons, then what the paper's
    protocol would cost)."""
    checks, runs = [], []
    for column, found in by_column.items():
        checks += checks_of(found.runs, table.label, where=f" on {table.columns[column]['label']}")
        runs += [r for records in found.runs.values() for r in records]
    reason = grouped_reasons({table.columns[c]["label"]: f.reason for c, f in by_column.items()})
    reason = f"{reason}. At the paper's protocol: {cost}" if reason else None
    paper_value = ", ".join(f"{table.columns[c]['label']} {table.value(WINNER, c):.2f}" for c in by_column
                            if table.value(WINNER, c) is not None)
    return judge(claim_id, claim, table.reference(), budget, checks, untested_reason=reason,
                 paper_value=paper_value, runs=runs)


def grouped_reasons(reasons: dict[str, str | None]) -> str | None:
    """'A, B: why; C: why' (columns sharing a reason named together), None when no column has one."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        if reason:
            by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()) or None


def paper_cost(runs: int, epochs: int, images: int, batch: int, note: str = "", timed: bool = True) -> str:
    """What a paper setting costs (the DM pages' estimate, on the CIFAR ResNet-18 reference logs)."""
    return compute_text(runs, epochs, images, batch, timed=timed, note=note)


def columns_markdown(by_column: dict[str, ColumnRuns], table: PaperTable) -> str:
    """One line per paper column: how many methods ran on it, or why none did."""
    return "\n".join(f"- {table.columns[c]['label']}: " + (f.reason or f"runs for {len(f.runs)} methods")
                     for c, f in by_column.items())


# ----------------------------------------------------------------------------- evaluations of our runs


def occlusion_ratios(runs: dict) -> list[str]:
    """The occlusion ratios every run stored ('0', '0.1', ...), in the evaluation's order."""
    keys = [list(r.evaluations[scored_network(m)]["occlusion"]["top1"]) for m, records in runs.items()
            for r in records]
    return [k for k in keys[0] if all(k in other for other in keys)] if keys else []


def occlusion_stats(runs: dict) -> dict[str, dict[str, SeedStats]]:
    """{ratio: {method: SeedStats of top-1 under that occlusion ratio}}, carrying the evaluated image count
    (``scores.evaluated_images``), so a one-seed comparison gets McNemar's bound from the accuracies."""
    return {ratio: evaluation_stats(runs, "occlusion", ("top1", ratio)) for ratio in occlusion_ratios(runs)}


def occlusion_markdown(stats: dict[str, dict[str, SeedStats]], label: Callable[[str], str]) -> str:
    """Methods as rows, occlusion ratios as columns, top-1 mean ± sd."""
    methods = list(dict.fromkeys(m for by_method in stats.values() for m in by_method))
    rows = [[label(m)] + [stats[r][m].text(1) if m in stats[r] else "–" for r in stats] for m in methods]
    return markdown_table(["method"] + [f"{float(r):.0%}" for r in stats], rows)


def occlusion_checks(stats: dict[str, dict[str, SeedStats]], label: Callable[[str], str],
                     where: str = "") -> list[Check]:
    """'AdAutoMix has the highest top-1 at each occlusion ratio above 0', against each other method."""
    return [c for ratio, by_method in stats.items() if float(ratio) > 0
            for c in winner_checks(by_method, label, where=f"{where} at {float(ratio):.0%} occlusion")]


def occlusion_run_checks(runs: dict, label: Callable[[str], str], where: str = "") -> list[Check]:
    """occlusion_checks of runs (for :func:`paper_data_verdict`)."""
    return occlusion_checks(occlusion_stats(runs), label, where)


def occlusion_protocol(runs: dict) -> str:
    """The stored protocol of our occlusion numbers: grid, images, fill (from the first run)."""
    from ..evaluate.occlusion import DEFAULT_GRID

    for method, records in runs.items():
        result = records[0].evaluations[scored_network(method)]["occlusion"]
        grid = result.get("grid", DEFAULT_GRID)
        return (f"random cells of a {grid}x{grid} grid ({32 // grid}x{32 // grid} px each on 32 px images; the "
                f"paper: 16x16 px patches of 224 px images, a 14x14 grid) set to {result.get('fill', 0)} (black), "
                f"the same cells staying occluded as the ratio grows, on {result.get('images', 'all')} test images")
    return "no occlusion results stored"


def plot_occlusion(table: PaperTable, stats: dict[str, dict[str, SeedStats]]):
    """Top-1 against occlusion ratio: Table 7 (left; solid Swin-T on CIFAR-100, dashed R-50 on CUB-200) and
    ours (right, mean with sd band)."""
    fig, (left, right) = figure(ncols=2)
    for method in table.rows:
        for group, style in (("c100_swin", "-"), ("cub_r50", "--")):
            points = [(spec["ratio"], table.value(method, c)) for c, spec in table.columns.items()
                      if spec["group"] == group and table.value(method, c) is not None]
            if points:
                left.plot(*zip(*points), style, marker=".", color=method_color(method),
                          label=table.label(method) if style == "-" or method in ("vanilla", "cutmix") else None)
    methods = list(dict.fromkeys(m for by_method in stats.values() for m in by_method))
    for method in methods:
        ratios = [float(r) for r in stats if method in stats[r]]
        means = [stats[r][method].mean for r in stats if method in stats[r]]
        sds = [stats[r][method].std for r in stats if method in stats[r]]
        right.plot(ratios, means, marker=".", color=method_color(method), label=method_label(method))
        right.fill_between(ratios, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                           color=method_color(method), alpha=0.15, linewidth=0)
    for ax, title in ((left, "paper (Table 7): solid Swin-T CIFAR-100, dashed R-50 CUB"), (right, "ours")):
        ax.set_title(title, fontsize=7)
        label_axes(ax, "occlusion ratio")
    fig.tight_layout()
    return fig


def robustness_stats(runs: dict) -> dict[str, dict[str, SeedStats]]:
    """{'clean': ..., 'corruption': ..., 'fgsm_error': ...}: clean top-1 and FGSM error of the final scored
    network on the test set (percentages of its images, so one seed is compared by McNemar's bound, as the
    FGSM page does), mean top-1 over every corruption and severity (an average of 60 sets of the same
    images: no such bound)."""
    return {"clean": evaluation_stats(runs, "fgsm", "clean_top1"),
            "corruption": evaluation_stats(runs, "corruption", "mean"),
            "fgsm_error": evaluation_stats(runs, "fgsm", "fgsm_error")}


def table4_text(key: str) -> str:
    """The paper's side of a Table 4 claim ('clean', 'corruption', 'fgsm_error'): the table is missing from our
    copy of the paper, so what Sec. 4.3's text says instead."""
    gains = extras("adautomix_table4")["text_gains_over_automix"]
    return (f"AdAutoMix {gains[key]:+.2f} over AutoMix (Sec. 4.3 text)" if key in gains
            else "lowest, stated in the text (the table is missing from our copy)")


def robustness_markdown(stats: dict[str, dict[str, SeedStats]], label: Callable[[str], str]) -> str:
    methods = list(stats["clean"])
    rows = [[label(m), scored_network(m), stats["clean"][m].text(), stats["corruption"][m].text(),
             stats["fgsm_error"][m].text()] for m in methods]
    return markdown_table(["method", "network", "clean top-1 %", "corruption top-1 % (mean)", "FGSM error %"], rows)


def robustness_run_checks(runs: dict, label: Callable[[str], str], where: str = "") -> list[Check]:
    """'AdAutoMix has the highest clean and corruption top-1 and the lowest FGSM error' (paper_data_verdict)."""
    stats = robustness_stats(runs)
    return (winner_checks(stats["clean"], label, quantity="clean top-1", where=where)
            + winner_checks(stats["corruption"], label, quantity="corruption top-1", where=where)
            + winner_checks(stats["fgsm_error"], label, quantity="FGSM error", where=where, higher_is_better=False))


def ece_run_checks(runs: dict, label: Callable[[str], str], where: str = "") -> list[Check]:
    """'AdAutoMix has the lowest ECE (10 bins)' against each other method (for paper_data_verdict)."""
    from .scores import evaluation_stats

    return winner_checks(evaluation_stats(runs, "ece", "ece_percent_10bins"), label, quantity="ECE", where=where,
                         higher_is_better=False)


def gains_text(stats: dict[str, dict[str, SeedStats]], quoted: dict[str, float], label: Callable[[str], str],
               base: str = "automix") -> str:
    """'clean: the text +1.53, ours +0.20; corruption: ...' (AdAutoMix minus ``base``, seed means)."""
    parts = []
    for key, value in quoted.items():
        by_method = stats[key]
        ours = (f"ours {by_method[WINNER].mean - by_method[base].mean:+.2f}" if WINNER in by_method
                and base in by_method else f"ours: needs {label(WINNER)} and {label(base)} runs")
        parts.append(f"{key}: the text {value:+.2f}, {ours}")
    return "; ".join(parts) + f" (points, {label(WINNER)} minus {label(base)})."


def corruption_source(runs: dict) -> str:
    """Which corruptions our numbers are on (official files or regenerated), from the first stored result."""
    for method, records in runs.items():
        result = records[0].evaluations[scored_network(method)]["corruption"]
        names = ", ".join(result["corruptions"])
        return (f"{result['source']}: {len(result['corruptions'])} corruptions ({names}) x 5 severities on "
                f"{result.get('images', 'all')} test images")
    return "no corruption results stored"


def plot_robustness(stats: dict[str, dict[str, SeedStats]]):
    """Three panels of bars (mean, sd whiskers): clean top-1, mean corruption top-1, FGSM error."""
    titles = {"clean": "clean top-1 (%)", "corruption": "corruption top-1 (%)", "fgsm_error": "FGSM error (%)"}
    fig, axes = figure(ncols=3)
    for ax, (key, title) in zip(axes, titles.items()):
        methods = list(stats[key])
        ax.bar(range(len(methods)), [stats[key][m].mean for m in methods],
               yerr=[stats[key][m].std for m in methods], color=[method_color(m) for m in methods])
        ax.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=45, ha="right", fontsize=6)
        ax.set_ylabel(title)
        if methods:  # zoom on the differences
            low = min(stats[key][m].mean - stats[key][m].std for m in methods)
            high = max(stats[key][m].mean + stats[key][m].std for m in methods)
            ax.set_ylim(max(0.0, low - 0.2 * (high - low) - 0.5), high + 0.2 * (high - low) + 0.5)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- AdAutoMix's arms


def arm_params(values: dict) -> dict:
    """method_params of AdAutoMix for ``values``, leaving out those equal to its defaults, so the default arm
    is the plain AdAutoMix run every other page shares."""
    from ..methods import METHODS

    defaults = METHODS.get(WINNER).default_params
    unknown = [k for k in values if k not in defaults]
    if unknown:
        raise InvalidParameterError("AdAutoMix parameter", unknown[0], f"one of {sorted(defaults)}")
    return {k: v for k, v in values.items() if defaults[k] != v}


def value_arms(name: str, param: str, values: Sequence) -> dict[str, dict]:
    """{'lambda=0.2': {'alpha': 0.2}, 'lambda=1': {}, ...}: one arm per value of one AdAutoMix parameter."""
    return {f"{name}={v:g}": arm_params({param: v}) for v in values}


# Table 8's rows as AdAutoMix method_params (None: no option builds the row). L_mce and L_ace share one
# weight (mce_weight a, 1 - a), so Base and Base + L_ace, which switch them off one at a time, cannot be built.
# Table 8's rows add one term at a time; "+ L_ace" weighs L_ace as in the full loss (1 - a = 0.5).
TABLE8_ARMS = {"base": {"mce_weight": 0.0, "ace_weight": 0.0, "teacher_weight": 0.0, "cosine_weight": 0.0},
               "ace": {"mce_weight": 0.0, "ace_weight": 0.5, "teacher_weight": 0.0, "cosine_weight": 0.0},
               "ace_mce": {"teacher_weight": 0.0, "cosine_weight": 0.0},
               "teacher": {"cosine_weight": 0.0}, "full": {}}
TABLE8_SHORT = {"base": "Base", "ace": "+ L_ace", "ace_mce": "+ L_ace + L_mce", "teacher": "+ teacher L_amce",
                "full": "+ L_cosine (full)"}
# Fig. 10: the generator without the ascent on the target's loss learns from the teacher terms alone.
ADVERSARIAL_ARMS = {"adversarial": {}, "without adversarial": {"ascent_scale": 0.0}}


def named_arms(arms: dict[str, dict], label: Callable[[str], str] = str) -> dict[str, dict]:
    """{label(arm): method_params without AdAutoMix's defaults}."""
    return {label(arm): arm_params(values) for arm, values in arms.items()}


# Grids of the arms pages (Tables 9-10, Fig. 6): the tables' values, and fewer at the smoke budget (the default
# first: its run is shared). At smoke one more lambda proves the arms' pipeline, N = 3 meets N = 1 (the Vanilla run)
# and alpha and beta run their default only: each smoke run of AdAutoMix costs minutes. The alpha and beta grids are
# ours: Fig. 6's values are not readable.
GRIDS = {"lambda": {"smoke": (1.0, 0.2), "full": (0.2, 1.0, 2.0, 5.0, 10.0)},
         "N": {"smoke": (3,), "full": (2, 3, 4, 5)},
         "alpha": {"smoke": (0.5,), "full": (0.1, 0.3, 0.5, 0.7, 0.9)},
         "beta": {"smoke": (0.3,), "full": (0.1, 0.3, 0.5, 0.7, 0.9)}}
GRID_PARAMS = {"lambda": "alpha", "N": "num_sources", "alpha": "mce_weight", "beta": "teacher_weight"}


def grid(params: NotebookParameters, name: str, values: Sequence | None = None) -> list:
    """The values of arm ``name`` this execution runs: ``values`` if given, else the smoke pair or the full grid."""
    return list(values or GRIDS[name]["smoke" if params.budget == "smoke" else "full"])


def grid_arms(params: NotebookParameters, name: str, values: Sequence | None = None
              ) -> tuple[dict[str, list], dict[str, SeedStats], str | None]:
    """(records, stats, reason) per arm of one AdAutoMix parameter; for N the Vanilla run is 'N=1' (Table 10)."""
    found, reasons = collect_arms(params, value_arms(name, GRID_PARAMS[name], grid(params, name, values)))
    stats = arm_stats(found)
    if name == "N":
        vanilla, reason = collect_runs(params, methods=["vanilla"])
        if "vanilla" in vanilla:
            found = {"N=1": vanilla["vanilla"], **found}
            stats = {"N=1": scored_stats(vanilla)["vanilla"], **stats}
        if reason:
            reasons["N=1"] = reason
    return found, stats, arms_reason(reasons)


def collect_arms(params: NotebookParameters, arms: dict[str, dict], log=None
                 ) -> tuple[dict[str, list], dict[str, str]]:
    """({arm: records}, {arm: why its runs are missing}) for AdAutoMix arms ({arm: method_params}).
    Arms the study's sweep never trains are named so."""
    from .dm_pages import outside_plan_note

    found, reasons = {}, {}
    for arm, method_params in arms.items():
        arm_params = arm_parameters(params, WINNER, method_params=method_params)
        runs, reason = collect_runs(arm_params, methods=[WINNER], method_params=method_params, log=log)
        if WINNER in runs:
            found[arm] = runs[WINNER]
        if reason:
            reasons[arm] = reason + outside_plan_note(arm_params, [WINNER], method_params=method_params)
    return found, reasons


def skipped_arms(params: NotebookParameters, all_arms: dict[str, dict], run: dict[str, dict]) -> dict[str, str]:
    """{arm: why it has no runs} for the arms of ``all_arms`` this execution does not run (the smoke
    budget runs only the shared AdAutoMix run), each priced at the cpu budget from the bench report."""
    from .costs import cpu_hours, rerun_seeds

    reasons = {}
    for arm, method_params in all_arms.items():
        if arm in run:
            continue
        config = params.config(WINNER, 0, method_params=method_params)
        hours, seeds = cpu_hours([config]), len(rerun_seeds(config))
        cost = (f"; at budget 'cpu' it costs about {hours:.1f} hours of one CPU core ({seeds} seed"
                f"{'s' if seeds > 1 else ''})" if hours else "")
        reasons[arm] = (f"not run at budget '{params.budget}' (this execution runs {', '.join(run)} only, each "
                        f"AdAutoMix arm costing what a full run does){cost}")
    return reasons


def arms_reason(reasons: dict[str, str], arms: Sequence[str] | None = None) -> str | None:
    """The reasons of ``arms`` (all by default), arms sharing a reason named together; None when none."""
    return grouped_reasons({a: r for a, r in reasons.items() if arms is None or a in arms})


def arm_settings_markdown(arms: dict[str, dict], table: PaperTable, short: dict[str, str]) -> str:
    """One row per arm: the paper's row, our name for it, and the AdAutoMix parameters that build it."""
    rows = [[table.label(row), name,
             ", ".join(f"{k} = {v}" for k, v in arms[name].items()) or "defaults (the AdAutoMix run)"]
            for row, name in short.items() if name in arms]
    return markdown_table([f"{table.table} row", "arm", "AdAutoMix parameters"], rows)


def text_step_checks(text_table: PaperTable, table: PaperTable, column: str = "c100_r18") -> list[Check]:
    """'A gain the text quotes is the step between two rows of ``table``' (``text_gains`` with ``table8_rows``)."""
    checks = []
    for quote in extras(text_table.name).get("text_gains", []):
        before, after = quote["table8_rows"]
        step = table.value(after, column) - table.value(before, column)
        checks.append(Check(f"Sec. {quote['section']}: \"{quote['quote']}\" = {table.table} {table.label(after)} "
                            f"minus {table.label(before)}",
                            "supports" if _within_rounding(step, quote["value"]) else "contradicts",
                            f"quoted {quote['value']:+.2f}; {table.table} gives {step:+.2f}"))
    return checks


def arm_stats(found: dict[str, list], value_of=None) -> dict[str, SeedStats]:
    """{arm: SeedStats of the scored top-1} (or of ``value_of(record, method)``)."""
    return {arm: scored_stats({WINNER: records}, value_of)[WINNER] for arm, records in found.items()}


def preferred_checks(stats: dict[str, SeedStats], preferred: str, label: str = "AdAutoMix",
                     quantity: str = "top-1") -> list[Check]:
    """'The preferred arm beats each other arm' (paired over seeds)."""
    if preferred not in stats:
        return []
    return [check_order(f"{label} {preferred}", stats[preferred], f"{label} {arm}", s, quantity=quantity)
            for arm, s in stats.items() if arm != preferred and s.shares_seeds(stats[preferred])]


def step_checks(stats: dict[str, SeedStats], order: Sequence[str], label: str = "AdAutoMix") -> list[Check]:
    """'Each arm of ``order`` beats the one before' (an ablation adding one term at a time), where both ran."""
    present = [a for a in order if a in stats]
    return [check_order(f"{label} {after}", stats[after], f"{label} {before}", stats[before], quantity="top-1")
            for before, after in zip(present, present[1:]) if stats[before].shares_seeds(stats[after])]


def arms_markdown(stats: dict[str, SeedStats], preferred: str | None = None, paper: dict[str, str] | None = None,
                  extra: dict[str, SeedStats] | None = None) -> str:
    """One row per arm: ours (mean ± sd), the paper's number where given, the paper's choice marked."""
    rows = [[arm, s.text(), (paper or {}).get(arm, "–"), "yes" if arm == preferred else ""]
            for arm, s in {**(extra or {}), **stats}.items()]
    return markdown_table(["arm", "ours: top-1 %", "paper", "the paper's choice"], rows)


def plot_arms(panels: Sequence[tuple[str, dict[str, SeedStats], str | None, dict[str, float]]]):
    """One panel per parameter (title, {arm: stats}, preferred arm, {arm: the paper's number}): our top-1 per arm
    (mean, sd whiskers; the paper's choice hatched) and, where the paper prints numbers, its values on a
    second axis (grey diamonds)."""
    fig, axes = figure(ncols=max(len(panels), 1))
    for ax, (title, stats, preferred, paper) in zip(axes, panels):
        arms = list(dict.fromkeys(list(paper) + list(stats)))
        for i, arm in enumerate(arms):
            if arm in stats:
                ax.bar(i, stats[arm].mean, yerr=stats[arm].std, color=method_color(WINNER), alpha=0.8,
                       hatch="//" if arm == preferred else None, edgecolor="k", linewidth=0.4)
        ax.set_xticks(range(len(arms)), arms, rotation=45, ha="right", fontsize=6)
        ax.set_ylabel("ours: test top-1 (%)")
        ax.set_title(title, fontsize=8)
        if stats:  # zoom on the differences between arms
            low = min(s.mean - s.std for s in stats.values())
            high = max(s.mean + s.std for s in stats.values())
            ax.set_ylim(max(0.0, low - 0.3 * (high - low) - 0.5), high + 0.3 * (high - low) + 0.5)
        if paper:
            twin = ax.twinx()
            twin.plot([arms.index(a) for a in paper], list(paper.values()), "D", color="0.4", markersize=4)
            twin.set_ylabel("paper: top-1 (%)", fontsize=7, color="0.4")
    fig.tight_layout()
    return fig


def plot_arm_curves(found: dict[str, list], styles: dict[str, str] | None = None):
    """Test top-1 per epoch (seed mean) of each arm's scored (EMA) network, and of its online network thin."""
    fig, (ax,) = figure()
    for i, (arm, records) in enumerate(found.items()):
        style = (styles or {}).get(arm, "-")
        for network, width in ((scored_network(WINNER), 1.6), ("online", 0.7)):
            curves = [r.curve(f"{network}_top1") for r in records]
            points = [(e, statistics.fmean(vs)) for e, vs in enumerate(zip(*curves), start=1) if None not in vs]
            if points:
                ax.plot(*zip(*points), style, linewidth=width, marker=".", color=f"C{i}",
                        label=f"{arm} ({network})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    label_axes(ax, "epoch")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- cost per step (Table 10)


def bench_seconds(report: dict) -> dict[str, list[float]]:
    """{bench row: its timed seconds per step} of a ``mixrepro bench`` report."""
    return {row["method"]: list(row["step_seconds"]) for row in report["rows"]}


def slower_check(name_a: str, a: Sequence[float], name_b: str, b: Sequence[float]) -> Check:
    """'a costs more per step than b' from the bench's timed steps (interleaved rounds on one device):
    a one-sided Mann-Whitney test on the step times decides (p < 0.05)."""
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(a, b, alternative="greater").pvalue
    p_less = mannwhitneyu(a, b, alternative="less").pvalue
    outcome = "supports" if p < ALPHA else "contradicts" if p_less < ALPHA else "inconclusive"
    return Check(f"{name_a} slower per step than {name_b}", outcome,
                 f"median {statistics.median(a):.3f} vs {statistics.median(b):.3f} s/step "
                 f"({len(a)} and {len(b)} timed steps; Mann-Whitney p {p:.2g})")


def ratio_check(statement: str, ours: float, paper: float, tolerance: float = 0.25) -> Check:
    """'Our cost ratio is the paper's' within a relative ``tolerance`` (hardware differs: a loose bound)."""
    ok = abs(ours / paper - 1) <= tolerance
    return Check(statement, "supports" if ok else "contradicts",
                 f"ours {ours:.2f}x vs paper {paper:.2f}x (bound: within {tolerance:.0%} of the paper's)")


# The bench rows that time AdAutoMix with N = 1..5 input images (N = 1: vanilla training, as in Table 10),
# measured in one process by `mixrepro bench --methods vanilla adautomix --vary adautomix.num_sources=2,4,5`.
NUM_SOURCES_ROWS = {1: "vanilla", 2: f"{WINNER}[num_sources=2]", 3: WINNER, 4: f"{WINNER}[num_sources=4]",
                    5: f"{WINNER}[num_sources=5]"}
NUM_SOURCES_BENCH = ("mixrepro bench --methods vanilla adautomix --vary adautomix.num_sources=2,4,5 --precision bf16 "
                     "--channels-last --threads 1")


def paper_step_seconds(table: PaperTable) -> dict[int, str]:
    """Table 10's seconds per iteration by N, as printed (four decimals): {1: '0.1584', ...}."""
    return {int(row[1:]): fmt(table.value(row, "s_per_iter"), 4) for row in table.rows}


def num_sources_bench(results_dir):
    """(path, report) of the newest bench report of the store that times N = 1..5, or (None, None)."""
    from .automix_pages import latest_bench_report

    try:
        return latest_bench_report(results_dir, list(NUM_SOURCES_ROWS.values()))
    except InvalidParameterError:
        return None, None


def cost_growth_checks(report: dict | None) -> list[Check]:
    """'N + 1 input images cost more per step than N', for N = 1..4, from one report's timed steps."""
    if report is None:
        return []
    steps = bench_seconds(report)
    return [slower_check(f"N = {n + 1}", steps[NUM_SOURCES_ROWS[n + 1]], f"N = {n}", steps[NUM_SOURCES_ROWS[n]])
            for n in range(1, 5)]


def num_sources_text(report: dict | None) -> str:
    """'0.177, 0.722, 0.750, 0.782, 0.795 s/step for N = 1..5' ('' without the report)."""
    if report is None:
        return ""
    seconds = step_seconds(report)
    return ", ".join(f"{seconds[name]:.3f}" for name in NUM_SOURCES_ROWS.values()) + " s/step for N = 1..5"


def bench_markdown(report: dict, table: PaperTable, by_inputs: dict | None = None) -> str:
    """Table 10's seconds per iteration beside our bench's seconds per step (N = 1: vanilla; N = 3: AdAutoMix)
    and, from ``by_inputs`` (a report of every N, :func:`num_sources_bench`), each N's."""
    def per_row(bench, names):
        seconds = step_seconds(bench) if bench else {}
        return {f"n{n}": seconds.get(name) for n, name in names.items()}

    columns = [per_row(report, {1: "vanilla", 3: WINNER}), per_row(by_inputs, NUM_SOURCES_ROWS)]
    paper_base = table.value("n1", "s_per_iter")
    rows = []
    for row in table.rows:
        value = table.value(row, "s_per_iter")
        cells = [table.label(row), fmt(value, 4), f"{value / paper_base:.2f}x"]
        for ours in columns:
            mine, base = ours.get(row), ours["n1"]
            cells += [fmt(mine, 3), f"{mine / base:.2f}x" if mine and base else "–"]
        rows.append(cells)
    return markdown_table(["inputs", "paper s/iter", "paper / N = 1", "ours s/step (bench)", "ours / N = 1",
                           "ours s/step (N bench)", "N bench / N = 1"], rows)


# ----------------------------------------------------------------------------- mask statistics (Figs. 12-14)


MASK_LOGS = {"automix": ("mask_std_gen", "mask_mean_gap_gen"), WINNER: ("mask_std", "mask_mean_gap")}


def mask_curves(runs: dict) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{method: {'std': [(epoch, seed mean)], 'gap': [...]}} of the generator's logged mask statistics: the
    spatial sd of a mask (0: a constant mask, i.e. a plain linear mix) and |mask mean - lambda|."""
    curves = {}
    for method, (std_key, gap_key) in MASK_LOGS.items():
        if method not in runs:
            continue
        curves[method] = {}
        for name, key in (("std", std_key), ("gap", gap_key)):
            series = [r.curve(key) for r in runs[method]]
            curves[method][name] = [(e, statistics.fmean(vs)) for e, vs in enumerate(zip(*series), start=1)
                                    if None not in vs]
    return curves


def plot_mask_curves(curves: dict[str, dict[str, list[tuple[int, float]]]]):
    """Two panels over epochs: the masks' spatial sd and their |mean - lambda|, one line per method."""
    fig, axes = figure(ncols=2)
    titles = {"std": "spatial sd of a mask", "gap": "|mask mean - lambda|"}
    for ax, (name, title) in zip(axes, titles.items()):
        for method, by_name in curves.items():
            if by_name[name]:
                ax.plot(*zip(*by_name[name]), marker=".", color=method_color(method), label=method_label(method))
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- what is not built


CAM_PLAN = """- **An evaluation `cam` in `mixrepro.evaluate`**, registered like `occlusion`: for a fixed, seeded set of
  test-image pairs mixed at lambda = 0.5 (a Mixup blend and a CutMix half-and-half), the class activation map of
  each network for each of the two classes (last-stage features weighted by that class's row of the classifier),
  stored per run as numbers (the share of each class's map inside its own source's half, on the CutMix pairs) and
  a few 32x32 maps for display.
- **The study's sweep** would add it to every run (`mixrepro sweep study`; one forward pass per pair and network,
  far less than the corruption evaluation).
- **Then testable**, on the CIFAR-10 copy: whether a network trained with AdAutoMix places each class's map on that
  class's region more than networks trained with the other methods. The paper does not say so; it would be our
  reading of the figure, a derivation rather than a claim of the paper."""

SAMPLES_PLAN = """- **Mixed samples of fixed inputs at several epochs** (Fig. 14): the trainer would have to save, at
  chosen epochs, the generator's masks for a fixed, seeded batch of training images and lambdas (a hook in
  `mixrepro.training`, the samples stored beside `epochs.csv` as small arrays); the study keeps only the last
  checkpoint, in a cache outside the repository, and per-epoch summaries of the masks.
- **A measure of "more differences"**: e.g. the mean pixel distance between the mixes of the same inputs at
  consecutive saved epochs, AdAutoMix against AutoMix, paired over seeds. Then the B.4 statement becomes a
  ranking this study can judge on the CIFAR-10 copy.
- **Figs. 12-13** (AdAutoMix's mixes on CUB-200 and CIFAR-100) are illustrations; with the samples stored, the
  same figure of the CIFAR-10 copy could be drawn (`mixrepro.visualize.mixed_samples_figure` draws it from a
  trained method today, but a page may not use weights)."""

TABLE11_PLANS = {
    "dada": "a new method: a differentiable search over AutoAugment-style policies (operations with probabilities "
            "and magnitudes relaxed by Gumbel-softmax, with the RELAX gradient estimator), then training with the "
            "policy found; needs an image-operation library and a search phase before training",
    "me_ada": "a new method: adversarial data augmentation with a maximum-entropy term, alternating minimisation "
              "with phases of gradient ascent on the inputs that append generated samples to the training set; "
              "several extra forward and backward passes per generated sample",
    "spectral_samix": "a new mixer: a spectral sensitivity map of the model guides an adversarial mixing in the "
                      "frequency domain that makes target-style images; designed for few-shot unsupervised domain "
                      "adaptation in clinical imaging (a source and a target domain), so a supervised CIFAR-100 "
                      "version needs choices the AdAutoMix paper does not state (its 54.01 is far below its "
                      "Baseline's 76.42)",
}


def not_built_markdown(table: PaperTable) -> str:
    """One row per method of a table this study does not build: the method, its number, what building it takes."""
    plans = extras(table.name).get("not_built", {})
    rows = [[table.label(m), fmt(table.value(m, next(iter(table.columns)))), plans[m], TABLE11_PLANS.get(m, "")]
            for m in plans]
    return markdown_table(["method", "paper top-1 %", "reference", "what building it would take"], rows)
