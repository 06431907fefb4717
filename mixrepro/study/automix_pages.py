"""The AutoMix (ECCV 2022) pages beyond Tables 1 and 13: Tables 2-6, 8-10, 14 and Figures 1, 4, 6, 7/12/13, 9.

What the pages share, kept here:

1. **The paper's own arithmetic.** Tables print a "Gain" row (AutoMix minus the best other
   row) and the text quotes differences and ranges read off the tables; several tables repeat
   cells of others. The transcriptions carry, beside the usual fields, ``quoted`` (the text's
   numbers, with the cells they speak about) and ``same_cells`` (cells another table repeats);
   :func:`arithmetic_checks` recomputes them all from the transcribed cells.
2. **Claims on data this study does not have** (ImageNet-1k, CUB-200, iNaturalist, Places205,
   CIFAR-100, Tiny-ImageNet): :func:`absent_reason` says which data and what the paper's
   protocol would cost; the CIFAR-10 copy runs as a labelled stand-in (:func:`stand_in_markdown`).
3. **Ablations as runs of AutoMix variants** (Tables 9 and 10, Figs. 6 and 9): each row is a set of
   AutoMix options (``mixrepro.methods.automix``: ``mask_source``, ``momentum_pipeline``,
   ``ema_momentum``, ``clean_ce``, ``lam_embed``...), read by :func:`variant_runs`.
4. Page pieces: corruption robustness (Table 6), the committed ``mixrepro bench`` report
   (Fig. 1), the Mix Block's logged mask statistics (Figs. 4, 6, 7) and stored mixed-sample
   snapshots (Fig. 4).
"""
from __future__ import annotations

import base64
import json
import math
import statistics
from pathlib import Path
from typing import Sequence

from ..errors import InvalidParameterError
from .collect import collect_runs, needs
from .display import fmt, markdown_table
from .facts import method_color, method_label, scored_network
from .paired import CONFIDENCE, Check
from .paper_tables import PAPER_NUMBERS_DIR, PaperTable, load_paper_table
from .parameters import arm_parameters
from .scores import SeedStats, evaluation_stats, run_seeds, scored_stats
from .verdicts import check_order, judge

FLOAT_SLACK = 1e-9  # float noise on top of half a unit of the last printed digit
WINNER = "automix"

# ----------------------------------------------------------------------------- the paper's arithmetic


def table_extras(name: str) -> dict:
    """The transcription's fields PaperTable does not carry (quoted, same_cells, printed_gain_inconsistent)."""
    return json.loads((PAPER_NUMBERS_DIR / f"{name}.json").read_text())


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def within_rounding(value: float, printed: str) -> bool:
    """Whether ``value`` rounds to the printed number (half a unit of its last digit)."""
    return abs(value - float(printed)) <= 0.5 * 10 ** -_decimals(printed) + FLOAT_SLACK


def best_other(table: PaperTable, column: str, winner: str = WINNER) -> tuple[str, float] | None:
    """(method, value) of the best row other than ``winner`` in ``column`` (None when no other row has a cell)."""
    others = [(m, table.value(m, column)) for m in table.rows if m != winner and table.value(m, column) is not None]
    return max(others, key=lambda mv: mv[1]) if others else None


def cell_gain(table: PaperTable, column: str, winner: str = WINNER) -> float:
    """``winner`` minus the best other row: what a printed Gain entry should be."""
    return table.value(winner, column) - best_other(table, column, winner)[1]


def gain_row_checks(table: PaperTable, winner: str = WINNER) -> list[Check]:
    """'The printed Gain is AutoMix minus the best other row', one check per printed entry."""
    checks = []
    for column, printed in table.printed_gain.items():
        other, value = best_other(table, column, winner)
        gain = table.value(winner, column) - value
        ok = within_rounding(gain, f"{printed:.2f}")
        checks.append(Check(f"{table.table} Gain under {table.columns[column]['label']} = AutoMix − best other row",
                            "supports" if ok else "contradicts",
                            f"printed {printed:+.2f}; cells: {table.value(winner, column):.2f} − "
                            f"{value:.2f} ({table.label(other)}) = {gain:+.2f}"))
    return checks


def _term_difference(table: PaperTable, term: Sequence[str]) -> float:
    method, base, column = term[:3]
    return table.value(method, column) - table.value(base, column)


def quoted_checks(table: PaperTable) -> list[Check]:
    """The text's numbers recomputed from the cells: each quoted difference, and each quoted range
    (min and max of the differences it speaks about, or of AutoMix's gains over the best other row)."""
    checks = []
    for spec in table_extras(table.name).get("quoted", []):
        head = f"{spec['section']}: \"{spec['quote']}\""
        if spec["kind"] == "differences":
            for term in spec["terms"]:
                value = _term_difference(table, term)
                method, base, column, printed = term
                checks.append(Check(f"{head}: {table.label(method)} − {table.label(base)} under "
                                    f"{table.columns[column]['label']} = {printed}",
                                    "supports" if within_rounding(value, printed) else "contradicts",
                                    f"cells: {table.value(method, column):.2f} − {table.value(base, column):.2f} = "
                                    f"{value:+.2f}" + (f" ({spec['note']})" if "note" in spec else "")))
        elif spec["kind"] == "range":
            values = ([_term_difference(table, t) for t in spec["terms"]] if "terms" in spec
                      else [cell_gain(table, c) for c in spec["gain_columns"]])
            low, high = spec["range"]
            ok = within_rounding(min(values), low) and within_rounding(max(values), high)
            checks.append(Check(f"{head} (quoted {low}~{high})", "supports" if ok else "contradicts",
                                f"table: {min(values):+.2f} to {max(values):+.2f}"
                                + (f" ({spec['note']})" if "note" in spec else "")))
        else:
            raise InvalidParameterError("quoted kind", spec["kind"], "'differences' or 'range'")
    return checks


def same_cell_checks(table: PaperTable) -> list[Check]:
    """'Cells another table repeats are equal', one check per statement, naming the cells that differ."""
    checks = []
    for spec in table_extras(table.name).get("same_cells", []):
        other = load_paper_table(spec["other"])
        differ = []
        for method, column, other_method, other_column in spec["pairs"]:
            mine, theirs = table.value(method, column), other.value(other_method, other_column)
            if mine is not None and theirs is not None and abs(mine - theirs) > FLOAT_SLACK:
                differ.append(f"{table.label(method)} {table.columns[column]['label']} {mine:.2f} vs "
                              f"{theirs:.2f}")
        compared = sum(table.value(m, c) is not None and other.value(om, oc) is not None
                       for m, c, om, oc in spec["pairs"])
        checks.append(Check(f"{spec['statement']} ({other.table})", "contradicts" if differ else "supports",
                            f"{compared - len(differ)} of {compared} cells equal"
                            + (f"; differ: {', '.join(differ)}" if differ else "")))
    return checks


def arithmetic_checks(table: PaperTable) -> list[Check]:
    """Every recomputation of the paper's own numbers: Gain row, quoted numbers, repeated cells."""
    return gain_row_checks(table) + quoted_checks(table) + same_cell_checks(table)


def arithmetic_verdict(claim_id: str, table: PaperTable, budget: str):
    """The derivation claim 'the paper's printed gains, quoted numbers and repeated cells agree with its cells'."""
    extras = table_extras(table.name)
    parts = [name for name, present in (("Gain row", table.printed_gain), ("quoted numbers", extras.get("quoted")),
                                         ("cells repeated from other tables", extras.get("same_cells")))
             if present]
    return judge(claim_id, f"{table.table}'s {', '.join(parts)} agree with its cells", table.reference(), budget,
                 arithmetic_checks(table), needs_training=False, kind="derivation")


def gain_markdown(table: PaperTable) -> str:
    """Per printed column: AutoMix, the best other row, their difference and the printed Gain."""
    rows = []
    for column, printed in table.printed_gain.items():
        other, value = best_other(table, column)
        gain = table.value(WINNER, column) - value
        rows.append([table.columns[column]["label"], fmt(table.value(WINNER, column)),
                     f"{table.label(other)} {value:.2f}", f"{gain:+.2f}", f"{printed:+.2f}",
                     "yes" if within_rounding(gain, f"{printed:.2f}") else "**no**"])
    return markdown_table(["column", "AutoMix", "best other row", "difference", "printed Gain", "agree"], rows)


def checks_markdown(checks: Sequence[Check]) -> str:
    """One row per check (for the paper's arithmetic shown above the verdicts)."""
    return markdown_table(["check", "outcome", "numbers"], [[c.statement, c.outcome, c.detail] for c in checks])


def quotes_markdown(table: PaperTable) -> str:
    """A figure transcription's quotes: what the text states instead of numbers."""
    return "\n".join(f"- Sec. {q['section']}: \"{q['quote']}\"" for q in table_extras(table.name).get("quotes", []))


# ----------------------------------------------------------------------------- data not here, options not here

# Datasets the paper uses that this study has no loader for (mixrepro.data.DATASETS).
UNLOADABLE = {"imagenet": "ImageNet-1k", "inat2017": "iNaturalist 2017", "inat2018": "iNaturalist 2018",
              "places205": "Places205"}


def absent_reason(datasets: Sequence[str], cost: str) -> str:
    """Why a claim on ``datasets`` is not tested here, and what the paper's protocol would cost.

    Names only facts that hold on every machine (a dataset this study cannot load; or one it can
    load but has no stored runs of, which ``collect_runs`` reports itself), so the text is the same
    wherever the page is executed."""
    from ..data import DATASETS

    unloadable = [UNLOADABLE.get(d, d) for d in datasets if d not in DATASETS.names()]
    loadable = [DATASETS.get(d).label for d in datasets if d in DATASETS.names()]
    parts = []
    if unloadable:
        parts.append(f"{', '.join(unloadable)} {'is' if len(unloadable) == 1 else 'are'} not among the datasets this "
                     "study can load")
    if loadable:
        parts.append(f"no runs on {', '.join(loadable)} are stored (`mixrepro datasets` says how to obtain the data)")
    return "; ".join(parts) + f". At the paper's protocol: {cost}"


def imagenet_cost(runs: int, epochs: int, note: str) -> str:
    """'R runs x E epochs x 5,005 iterations (batch 256) of ImageNet-1k' with a note on what it leaves out."""
    from .costs import compute_text

    return compute_text(runs, epochs, 1_281_167, 256, timed=False, note=note)


# ----------------------------------------------------------------------------- stand-in runs


def stand_in_markdown(runs: dict, table: PaperTable | None = None) -> str:
    """Our CIFAR-10 stand-in runs: scored network and top-1 (mean ± sd over seeds)."""
    stats = scored_stats(runs)
    label = table.label if table else method_label
    return markdown_table(["method", "network", "top-1 % (stand-in)"],
                          [[label(m), scored_network(m), s.text()] for m, s in stats.items()])


STAND_IN = "CIFAR-10 copy as a stand-in"


# ----------------------------------------------------------------------------- Table 6: robustness

ROBUSTNESS_EVALUATIONS = ("ece", "fgsm", "corruption")


def corruption_stats(runs: dict) -> dict[str, SeedStats]:
    """{method: SeedStats} of the mean top-1 over every corruption and severity (scored network)."""
    return evaluation_stats(runs, "corruption", "mean")


def corruption_clean_stats(runs: dict) -> dict[str, SeedStats]:
    """{method: SeedStats} of the clean top-1 on the corruption evaluation's own images."""
    return evaluation_stats(runs, "corruption", "clean_top1")


def severity_means(runs: dict) -> dict[str, dict[int, float]]:
    """{method: {severity: mean top-1 over corruptions and seeds}}, severity 0 = the same images clean."""
    out = {}
    for method, records in runs.items():
        results = [r.evaluations[scored_network(method)]["corruption"] for r in records]
        curve = {0: statistics.fmean(r["clean_top1"] for r in results)}
        for severity in sorted(results[0]["mean_per_severity"], key=int):
            curve[int(severity)] = statistics.fmean(r["mean_per_severity"][severity] for r in results)
        out[method] = curve
    return out


def corruption_source(runs: dict) -> str:
    """'regenerated ..., 12 corruptions, 2,000 test images' of the stored evaluations (first run)."""
    for method, records in runs.items():
        result = records[0].evaluations[scored_network(method)]["corruption"]
        return (f"{result['source']}; {len(result['corruptions'])} corruptions x 5 severities on "
                f"{result['images']:,} test images")
    return "no corruption evaluation stored"


def robustness_markdown(table: PaperTable, runs: dict) -> str:
    """Ours per method: clean top-1 (the corruption images), corruption mean, FGSM error; the paper's beside."""
    clean, corrupt = corruption_clean_stats(runs), corruption_stats(runs)
    fgsm = evaluation_stats(runs, "fgsm", "fgsm_error")
    rows = [[table.label(m), scored_network(m), clean[m].text(), corrupt[m].text(), fgsm[m].text(),
             fmt(table.value(m, "clean")), fmt(table.value(m, "corruption")), fmt(table.value(m, "fgsm_error"))]
            for m in runs]
    return markdown_table(["method", "network", "ours: clean %", "ours: corruption %", "ours: FGSM error %",
                           "paper: clean %", "paper: corruption %", "paper: FGSM error %"], rows)


def plot_robustness(table: PaperTable, runs: dict):
    """Left: ours, mean top-1 against corruption severity (0 = clean); right: the paper's clean vs corruption."""
    from .figures import new_figure

    fig, (left, right) = new_figure(width=7.0, height=3.5, ncols=2)
    for method, curve in severity_means(runs).items():
        left.plot(list(curve), list(curve.values()), marker="o", color=method_color(method), label=table.label(method))
    left.set(xlabel="corruption severity (0 = clean)", ylabel="top-1 (%)", title="ours (regenerated corruptions)")
    for method in table.rows:
        right.plot(table.value(method, "clean"), table.value(method, "corruption"), "o", mfc="none", ms=8,
                   color=method_color(method), label=table.label(method))
    right.set(xlabel="clean top-1 (%)", ylabel="CIFAR-100-C top-1 (%)", title=f"paper ({table.table})")
    for ax in (left, right):
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Fig. 1: the bench report


def latest_bench_report(results_dir, rows: Sequence[str] = ("vanilla",)) -> tuple[Path, dict]:
    """(path, report) of the newest committed ``mixrepro bench`` report under ``<results>/bench/cpu`` that
    times every row in ``rows`` (a newer report of a few rows, e.g. ``--vary`` rows, does not hide the
    full table from a page that needs the full table)."""
    folder = Path(results_dir) / "bench" / "cpu"
    for path in sorted(folder.glob("*.json"), reverse=True):
        report = json.loads(path.read_text())
        if set(rows) <= {row["method"] for row in report["rows"]}:
            return path, report
    raise InvalidParameterError("bench report", str(folder),
                                f"a folder holding a `mixrepro bench` report (*.json) that times {', '.join(rows)}")


# A bench measured for a page (an empty results store at budget smoke) times few steps: it proves the
# pipeline; the committed report (``mixrepro bench``, 3 warm-up and 12 timed steps) is the measurement.
PAGE_BENCH_STEPS = {"smoke": (1, 3)}


def bench_report_for(params) -> tuple[Path, dict]:
    """The newest bench report of the page's store that times its methods; where there is none and the page
    may train, one is measured at the study's runtime (one thread, bf16, channels_last) and stored first."""
    try:
        return latest_bench_report(params.results_dir, ("vanilla", *params.methods))
    except InvalidParameterError:
        if not params.train:
            raise
    from ..training.bench import BenchSettings, run_bench, save_report

    warmup, repeats = PAGE_BENCH_STEPS.get(params.budget, (3, 12))
    settings = BenchSettings(dm_on=("mixup", "cutmix", "automix"), precision="bf16", channels_last=True, threads=1,
                             warmup=warmup, repeats=repeats, dataset=params.dataset)
    path = save_report(run_bench(settings, progress=False), params.results_dir)
    return path, json.loads(path.read_text())


def bench_rows(report: dict) -> dict[str, dict]:
    """{row name: row} of the report's methods trained with their default parameters (no loss variants)."""
    return {row["method"]: row for row in report["rows"] if not row.get("method_params")}


def bench_markdown(report: dict) -> str:
    """Median seconds per step, its ratio to Vanilla, and images per second, one row per method."""
    rows = [[method_label(m), f"{r['seconds_per_step']:.3f}", f"{r['ratio_to_vanilla']:.2f}",
             f"{r['images_per_s']:.0f}", len(r["step_seconds"])]
            for m, r in sorted(bench_rows(report).items(), key=lambda mr: mr[1]["seconds_per_step"])]
    return markdown_table(["method", "s / step (median)", "× Vanilla", "images / s", "timed steps"], rows)


def bench_settings_text(report: dict) -> str:
    """One line: what the bench timed (device, threads, precision, model width, batch)."""
    s, env = report["settings"], report["environment"]
    return (f"{env['device_name']} ({s['device']}), {s['threads']} thread(s), {s['precision']}, "
            f"{'channels_last, ' if s.get('channels_last') else ''}{s['model']} width {s['width']}, batch "
            f"{s['batch_size']} on {report['dataset_label']}; {s['warmup']} warm-up steps, {s['repeats']} timed")


def step_time_check(report: dict, a: str, b: str, *, faster: bool, confidence: float = CONFIDENCE) -> Check:
    """'a's step is faster (``faster``) / slower than b's': Welch's t interval on the timed steps.

    The interval of mean(a) - mean(b) wholly on the claimed side supports, wholly on the other
    contradicts, otherwise inconclusive (the steps are independent timings, not pairs)."""
    from scipy import stats

    rows = bench_rows(report)
    for name in (a, b):
        if name not in rows:
            raise InvalidParameterError("bench row", name, f"one of {sorted(rows)}")
    xa, xb = rows[a]["step_seconds"], rows[b]["step_seconds"]
    va, vb = statistics.variance(xa) / len(xa), statistics.variance(xb) / len(xb)
    diff, se = statistics.fmean(xa) - statistics.fmean(xb), math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    low, high = diff - half, diff + half
    claimed = high < 0 if faster else low > 0
    other = low > 0 if faster else high < 0
    outcome = "supports" if claimed else "contradicts" if other else "inconclusive"
    word = "faster" if faster else "slower"
    return Check(f"{method_label(a)} step {word} than {method_label(b)}'s", outcome,
                 f"mean {statistics.fmean(xa):.3f} s vs {statistics.fmean(xb):.3f} s: difference {diff:+.3f} s, "
                 f"{confidence:.0%} interval [{low:+.3f}, {high:+.3f}] s (Welch, {len(xa)} and {len(xb)} steps)")


def plot_cost_accuracy(report: dict, stats: dict[str, SeedStats], label: str):
    """Seconds per step (bench) against our top-1 (``stats``; methods without runs are left out)."""
    from .figures import new_figure

    fig, (ax,) = new_figure(width=7.0, height=3.5)
    rows = bench_rows(report)
    for method, s in stats.items():
        if method in rows:
            ax.errorbar(rows[method]["seconds_per_step"], s.mean, yerr=s.std, fmt="o", color=method_color(method),
                        label=method_label(method))
    ax.set(xlabel="seconds per training step (mixrepro bench)", ylabel="test top-1 (%)", title=label)
    if ax.has_data():
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the Mix Block's logged masks

# A mask whose spatial std is below this is read as Mixup's trivial solution (a spatially constant
# mask, std 0); a half-and-half binary mask has std 0.5 (mixrepro.study.audit.binary_mask_std).
TRIVIAL_MASK_STD = 0.05


def _column(row: dict, *names):
    for name in names:
        if row.get(name) not in (None, ""):
            return float(row[name])
    return None


def mask_curve(record) -> dict[str, list[tuple[int, float]]]:
    """Per epoch: the Mix Block's spatial mask std and E|mask mean − λ| (its own pair's logs)."""
    curves = {"std": [], "gap": []}
    for row in record.epochs:
        std, gap = _column(row, "mask_std_gen"), _column(row, "lamresp_abs_gap", "mask_mean_gap_gen")
        if std is not None:
            curves["std"].append((int(row["epoch"]), std))
        if gap is not None:
            curves["gap"].append((int(row["epoch"]), gap))
    return curves


def final_mask_stats(runs: dict, method: str = WINNER) -> dict[str, SeedStats]:
    """{'std', 'gap'}: the last epoch's mask std and |mask mean − λ| over seeds."""
    records = runs.get(method, [])
    curves = [mask_curve(r) for r in records]
    return {key: SeedStats(tuple(c[key][-1][1] for c in curves), seeds=run_seeds(records)) for key in ("std", "gap")
            if curves and all(c[key] for c in curves)}


def lambda_response_stats(runs: dict, method: str = WINNER) -> dict[str, SeedStats]:
    """{'correlation', 'slope', 'abs_gap', 'floor'} of the last logged epoch, over seeds
    (mixrepro.study.audit.final_lambda_response); empty where the runs did not log them."""
    from .audit import final_lambda_response

    records = runs.get(method, [])
    found = [final_lambda_response(r) for r in records]
    if not found or any(f is None for f in found):
        return {}
    return {key: SeedStats(tuple(float(f[key]) for f in found), seeds=run_seeds(records))
            for key in ("correlation", "slope", "abs_gap", "floor")}



def lambda_follow_checks(response: dict[str, SeedStats]) -> list[Check]:
    """'the mask mean follows λ': correlation above 0, and E|m − λ| below the λ-blind floor."""
    if not response:
        return []
    corr, gap, floor = response["correlation"], response["abs_gap"], response["floor"]
    return [check_order("corr(mask mean, λ)", corr, "0", SeedStats.constant(0.0, corr), unit="", quantity=""),
            check_order("E|mask mean − λ|", gap, f"the λ-blind floor {floor.mean:.3f}", floor,
                        higher_is_better=False, unit="")]


def mask_std_checks(stats: dict[str, SeedStats], collapsed: bool) -> list[Check]:
    """Per seed: did this run's Mix Block end on a trivial, Mixup-like mask (last epoch's spatial std below
    TRIVIAL_MASK_STD)? ``collapsed`` is what the claim says. Per run, not over seeds: "the pipeline
    prevents collapse" is a claim about every run, so one collapsed seed contradicts it whatever the
    mean; the std is an average over a whole epoch's masks, so it is no noisier than its digits."""
    word = "below" if collapsed else "above"
    return [Check(f"seed {seed}: final spatial mask std {word} {TRIVIAL_MASK_STD} (trivial, Mixup-like)",
                  "supports" if (value < TRIVIAL_MASK_STD) == collapsed else "contradicts",
                  f"final spatial mask std {text}") for seed, value, text in _final_stds(stats)]


def _final_stds(stats: dict[str, SeedStats]) -> list[tuple[int, float, str]]:
    """(seed, final mask std, '0.0001 (collapsed)') per run; empty without runs."""
    if "std" not in stats:
        return []
    std = stats["std"]
    return [(seed, value, f"{value:.4f}" + (" (collapsed)" if value < TRIVIAL_MASK_STD else ""))
            for seed, value in zip(std.seeds or range(std.n), std.values)]


def mask_std_text(stats: dict[str, SeedStats]) -> str:
    """The ledger's 'ours' cell: each seed's final spatial mask std, e.g. 'seed 0: 0.0742; seed 1: 0.0001
    (collapsed)' (empty without runs)."""
    return "; ".join(f"seed {seed}: {text}" for seed, _, text in _final_stds(stats))


def no_collapse_check(stats: dict[str, SeedStats]) -> list[Check]:
    """'the masks are not spatially constant', per seed (:func:`mask_std_checks`)."""
    return mask_std_checks(stats, collapsed=False)


def collapse_check(stats: dict[str, SeedStats]) -> list[Check]:
    """'the masks collapsed to a trivial, Mixup-like mask', per seed (:func:`mask_std_checks`)."""
    return mask_std_checks(stats, collapsed=True)


def settle_checks(runs: dict, fraction: float = 0.1, gap_slack: float = 0.02, std_share: float = 0.75,
                  method: str = WINNER) -> list[Check]:
    """'the Mix Block settles early', per seed: at ``fraction`` of training its |mask mean − λ| is within
    ``gap_slack`` of the last epoch's and its mask std at least ``std_share`` of the last epoch's."""
    checks = []
    for record in runs.get(method, []):
        curves = mask_curve(record)
        if not (curves["std"] and curves["gap"]):
            continue
        epoch = max(1, round(fraction * record.config.epochs))
        gap_then, std_then = dict(curves["gap"]).get(epoch), dict(curves["std"]).get(epoch)
        gap_end, std_end = curves["gap"][-1][1], curves["std"][-1][1]
        ok = gap_then <= gap_end + gap_slack and std_then >= std_share * std_end
        checks.append(Check(f"seed {record.config.seed}: at epoch {epoch} of {record.config.epochs} the mask is "
                            f"within {gap_slack} of its final |mean − λ| and at {std_share:.0%} of its final std",
                            "supports" if ok else "contradicts",
                            f"epoch {epoch}: |mean − λ| {gap_then:.3f} (final {gap_end:.3f}); std {std_then:.4f} "
                            f"(final {std_end:.4f})"))
    return checks


def plot_mask_curves(runs: dict, method: str = WINNER):
    """The Mix Block's mask std (left) and |mask mean − λ| (right) per epoch, one line per seed."""
    from .figures import new_figure

    fig, (left, right) = new_figure(width=7.0, height=3.2, ncols=2)
    for record in runs.get(method, []):
        curves = mask_curve(record)
        for ax, key in ((left, "std"), (right, "gap")):
            if curves[key]:
                ax.plot(*zip(*curves[key]), marker=".", color=method_color(method), alpha=0.8,
                        label=f"seed {record.config.seed}")
    from matplotlib.ticker import MaxNLocator

    left.axhline(TRIVIAL_MASK_STD, color="grey", ls=":", lw=1, label="trivial-mask threshold")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set(xlabel="epoch", ylabel="spatial std of the mask", title="Mix Block mask: spatial structure")
    right.set(xlabel="epoch", ylabel="E|mask mean − λ|", title="Mix Block mask: share vs λ")
    for ax in (left, right):
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def mask_stats_markdown(runs: dict, method: str = WINNER) -> str:
    """Per seed: last epoch, mask std, |mask mean − λ|, λ-response correlation and slope, λ-blind floor."""
    from .audit import final_lambda_response

    rows = []
    for record in runs.get(method, []):
        curves, response = mask_curve(record), final_lambda_response(record) or {}
        rows.append([record.config.seed, record.config.epochs,
                     fmt(curves["std"][-1][1], 4) if curves["std"] else "–",
                     fmt(curves["gap"][-1][1], 3) if curves["gap"] else "–",
                     fmt(response.get("correlation")), fmt(response.get("slope")), fmt(response.get("floor"), 3)])
    return markdown_table(["seed", "epochs", "final mask std", "final E|mask mean − λ|", "corr(mask mean, λ)",
                           "slope", "λ-blind floor"], rows)


# ----------------------------------------------------------------------------- Fig. 4: stored mixed samples

SNAPSHOT_KEY = "mixed_samples_over_lambda"  # stored under the run's EMA network evaluations (k feeds the Mix Block)
# Fig. 4's lambdas (0, 0.3, 0.7, 1) and the 0.5 of Figs. 7, 12 and 13: one stored snapshot serves both pages.
SNAPSHOT_LAMBDAS = (0.0, 0.3, 0.5, 0.7, 1.0)


def _b64(tensor) -> str:
    return base64.b64encode(tensor.contiguous().numpy().tobytes()).decode("ascii")


def _unb64(text: str, shape):
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


def compute_snapshot(record, lambdas: Sequence[float] = SNAPSHOT_LAMBDAS, pairs: int = 4, data_root=None) -> dict:
    """The Mix Block's masks for ``pairs`` test-image pairs at each λ, from the run's final weights.

    Pairs are the first 2 x ``pairs`` images of the study's fixed class-balanced test order (image
    i with image i + pairs: different classes). Images and masks are kept as uint8 (a mask value
    m as round(255 m)), so the figure can be redrawn from the store alone."""
    import torch

    from ..data.subsets import balanced_subset
    from ..evaluate import EVALUATION_SUBSET_SEED
    from ..methods.mixblock import eval_mode
    from ..training.final import load_final_method
    from ..training.runtime import make_runtime

    dataset, method = load_final_method(record.config, make_runtime("cpu", amp=False, channels_last=False),
                                        data_root=data_root)
    index = balanced_subset(dataset.test_y, 2 * pairs, seed=EVALUATION_SUBSET_SEED)
    images = dataset.test_x[index]  # uint8 [2P, H, W, C]
    x = images.permute(0, 3, 1, 2).float() / 255
    perm = torch.cat([torch.arange(pairs, 2 * pairs), torch.arange(pairs)])
    masks = []
    with torch.no_grad(), eval_mode(method):
        z = method.encoder_features(x)
        for lam in lambdas:
            mask = method.mix_block(z, perm, float(lam), x.shape[-2:])[:pairs, 0]  # weight of image i
            masks.append((mask * 255).round().to(torch.uint8))
    labels = dataset.test_y[index]
    return {"lambdas": [float(v) for v in lambdas], "pairs": pairs, "image_shape": list(images.shape[1:]),
            "labels": [[int(labels[i]), int(labels[i + pairs])] for i in range(pairs)],
            "class_names": list(dataset.classes),
            "images_uint8": _b64(images), "masks_uint8": _b64(torch.stack(masks)),
            "network": "ema (features of the momentum encoder k feed the Mix Block)"}


def stored_snapshot(record) -> dict | None:
    return record.evaluations.get("ema", {}).get(SNAPSHOT_KEY)


def snapshot_of(params, record, *, may_compute: bool) -> tuple[dict | None, str | None]:
    """(snapshot, None) from the store; computed from the final weights and stored first when
    ``may_compute`` and the weights are in the checkpoint cache; else (None, why not)."""
    from ..errors import MixreproError
    from ..results import ResultsStore

    found = stored_snapshot(record)
    if found is not None or not may_compute:
        return found, None if found is not None else (
            f"no mixed-sample snapshot is stored with run {record.config.key()} (executing this page with "
            "`draw_samples=True` where the run's final weights are in the checkpoint cache stores one)")
    try:
        snapshot = compute_snapshot(record)
    except MixreproError as err:
        return None, f"no snapshot stored and none can be drawn here: {err}"
    evaluations = {net: dict(v) for net, v in record.evaluations.items()}
    evaluations.setdefault("ema", {})[SNAPSHOT_KEY] = snapshot
    ResultsStore(params.results_dir).save_evaluations(record, evaluations)
    return snapshot, None


def snapshot_mask_means(snapshot: dict):
    """[λ, pair] spatial means of the stored masks (the share of image i in each mix)."""
    h, w = snapshot["image_shape"][:2]
    masks = _unb64(snapshot["masks_uint8"], (len(snapshot["lambdas"]), snapshot["pairs"], h, w)) / 255.0
    return masks.mean(axis=(2, 3))


def plot_snapshot(snapshot: dict, title: str):
    """One row per pair: image i, image j, then the Mix Block's mix at each λ (title: λ and mask mean)."""
    import numpy as np
    from matplotlib.figure import Figure

    lambdas, pairs = snapshot["lambdas"], snapshot["pairs"]
    h, w, c = snapshot["image_shape"]
    images = _unb64(snapshot["images_uint8"], (2 * pairs, h, w, c)) / 255.0
    masks = _unb64(snapshot["masks_uint8"], (len(lambdas), pairs, h, w)) / 255.0
    names = snapshot.get("class_names") or []
    cols = 2 + len(lambdas)
    fig = Figure(figsize=(7.0, 1.25 * pairs + 0.5), dpi=150, layout="constrained")
    axes = fig.subplots(pairs, cols, squeeze=False)
    for p in range(pairs):
        a, b = images[p], images[p + pairs]
        label_a, label_b = snapshot["labels"][p]
        cells = [(a, "x_i " + _name(names, label_a)), (b, "x_j " + _name(names, label_b))]
        for k, lam in enumerate(lambdas):
            mask = masks[k, p][..., None]
            cells.append((mask * a + (1 - mask) * b, f"λ={lam:g}, mask {mask.mean():.2f}"))
        for ax, (image, text) in zip(axes[p], cells):
            ax.imshow(np.clip(image.squeeze(), 0, 1), cmap="gray" if c == 1 else None)
            ax.set_title(text, fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    return fig


def _name(names, label: int) -> str:
    return f"({names[label]})" if label < len(names) else f"(class {label})"


# ----------------------------------------------------------------------------- runs of AutoMix variants


def variant_runs(params, arms: dict[str, dict], method: str = WINNER) -> tuple[dict, str | None]:
    """({arm: [RunRecord per seed]}, reason) for AutoMix with each arm's method_params ({} = the shared
    default run); arms the study's sweep never trains are named as such in the reason."""
    from .dm_pages import outside_plan_note

    found, reasons = {}, []
    for arm, method_params in arms.items():
        fields = {"method_params": dict(method_params)} if method_params else {}
        arm_params = arm_parameters(params, method, **fields)
        runs, reason = collect_runs(arm_params, methods=[method], **fields)
        if method in runs:
            found[arm] = runs[method]
        if reason:
            reasons.append(f"{arm}: {reason}" + outside_plan_note(arm_params, [method], **fields))
    return found, "; ".join(reasons) or None


def arm_stats(arms: dict) -> dict[str, SeedStats]:
    """{arm: SeedStats} of the scored top-1 (AutoMix's EMA network)."""
    return {arm: SeedStats.over_runs(records, lambda r: r.summary[scored_network(r.config.method)]["median_last10"])
            for arm, records in arms.items()}


def arms_markdown(arms: dict, labels: dict[str, str]) -> str:
    """One row per arm: its AutoMix options, top-1 (mean ± sd) and training throughput."""
    stats = arm_stats(arms)
    def options(record):  # sorted: a run trained here and the same run read back print alike
        return json.dumps(record.config.method_params, sort_keys=True) if record.config.method_params else "(defaults)"

    rows = [[labels.get(a, a), options(records[0]), stats[a].text(),
             f"{statistics.fmean(r.summary['train_images_per_s'] for r in records):.0f}"]
            for a, records in arms.items()]
    return markdown_table(["arm", "AutoMix options", "top-1 % (EMA)", "training images / s"], rows)


def arm_checks(stats: dict[str, SeedStats], better: str, worse: str, labels: dict[str, str]) -> list[Check]:
    """'arm ``better`` beats arm ``worse``' (paired over seeds), when both ran."""
    if better not in stats or worse not in stats:
        return []
    return [check_order(labels.get(better, better), stats[better], labels.get(worse, worse), stats[worse],
                        quantity="top-1")]


def needs_arms(arms: dict, *names: str, missing: str | None = None) -> str | None:
    """Why an arm comparison cannot be judged (runs missing), or None."""
    return needs(arms, *names, missing=missing)


def plot_snapshot_or_reason(snapshot: dict | None, reason: str | None, title: str):
    """:func:`plot_snapshot`, or a figure that states why there is none (the page's glue name always exists)."""
    if snapshot is not None:
        return plot_snapshot(snapshot, title)
    import textwrap

    from .figures import new_figure

    fig, (ax,) = new_figure(width=7.0, height=1.2)
    ax.axis("off")
    ax.text(0.0, 0.5, "\n".join(textwrap.wrap(f"No mixed samples to show: {reason}", 110)), fontsize=7,
            va="center", transform=ax.transAxes)
    return fig


# ----------------------------------------------------------------------------- more table facts


def online_ema_markdown(runs: dict) -> str:
    """Per method: the online and the EMA (momentum) network's top-1 and their difference (mean ± sd over seeds)."""
    rows = []
    for method, records in runs.items():
        online = SeedStats.over_runs(records, lambda r: r.summary["online"]["median_last10"])
        ema = SeedStats.over_runs(records, lambda r: r.summary["ema"]["median_last10"])
        diff = SeedStats(tuple(e - o for e, o in zip(ema.values, online.values)), seeds=online.seeds)
        rows.append([method_label(method), online.text(), ema.text(), diff.text()])
    return markdown_table(["method", "online top-1 %", "EMA top-1 %", "EMA − online (points)"], rows)


def winner_cell_checks(table: PaperTable, winner: str = WINNER) -> list[Check]:
    """'AutoMix has the table's best cell', per column (for tables without a printed Gain row)."""
    checks = []
    for column in table.columns:
        other, value = best_other(table, column, winner)
        gain = table.value(winner, column) - value
        checks.append(Check(f"{table.label(winner)} has the best {table.table} cell under "
                            f"{table.columns[column]['label']}", "supports" if gain > 0 else "contradicts",
                            f"{table.value(winner, column):.2f} vs {table.label(other)} {value:.2f} ({gain:+.2f})"))
    return checks


def length_trend_checks(table: PaperTable, method: str, *, decays: bool) -> list[Check]:
    """Per backbone (columns grouped by model, ordered by epochs): ``decays`` -- the longest training scores
    below the method's best shorter one; else -- the longest training is the method's best."""
    checks = []
    for model in dict.fromkeys(spec["model"] for spec in table.columns.values()):
        cols = sorted((c for c, spec in table.columns.items() if spec["model"] == model),
                      key=lambda c: table.columns[c]["epochs"])
        values = [table.value(method, c) for c in cols]
        longest, best_shorter = values[-1], max(values[:-1])
        ok = longest < best_shorter if decays else longest >= best_shorter
        label = table.columns[cols[-1]]["label"]
        word = "below" if decays else "at least"
        checks.append(Check(f"{table.label(method)}: {label} {word} its best shorter training",
                            "supports" if ok else "contradicts",
                            ", ".join(f"{table.columns[c]['epochs']}ep {v:.2f}" for c, v in zip(cols, values))))
    return checks


def training_cost(runs: int, epochs: int, images: int, batch: int, *, timed: bool, note: str) -> str:
    """'R runs x E epochs x I iterations' (and GPU-hours when ``timed``: CIFAR ResNet-18 steps only)."""
    from .costs import compute_text

    return compute_text(runs, epochs, images, batch, timed=timed, note=note)


# ----------------------------------------------------------------------------- Table 13: training length


def length_decay_check(method: str, arms: list) -> tuple[Check | None, str | None]:
    """'``method`` at its longest training scores below its best shorter training' on the study's own runs
    of several lengths (``arms``: ``overview.length_arms(method, ...)``, the 120-epoch arm and the
    equal-compute arm's longer runs; the same rule as the paper-side :func:`length_trend_checks`), or why it
    cannot be checked yet: (check, None) or (None, reason). Judged only once every planned length has landed;
    the shorter ones alone would test another claim."""
    from .overview import pending_arms_reason, seed_stats

    if len(arms) < 2:
        return None, f"the study plan trains {method_label(method)} at one length only"
    name = method_label(method)
    pending = pending_arms_reason([f"{name}, {a.config.epochs} epochs" for a in arms if not a.records])
    if pending:
        return None, pending
    stats = {a.config.epochs: seed_stats(a.records, method) for a in arms}
    longest = max(stats)
    best_shorter = max((e for e in stats if e != longest), key=lambda e: stats[e].mean)
    return check_order(f"{name}, {best_shorter} epochs", stats[best_shorter], f"{name}, {longest} epochs",
                       stats[longest], quantity="top-1"), None


def lengths_text(method: str, arms: list) -> str:
    """'120 ep 80.86 ± 0.34 (n=3); 356 ep 81.40 (1 seed)': the scored top-1 of each length of ``arms``
    (``overview.length_arms``) run so far."""
    from .overview import seed_stats

    return "; ".join(f"{a.config.epochs} ep {seed_stats(a.records, method).text()}"
                     for a in arms if a.records) or "no runs yet"
