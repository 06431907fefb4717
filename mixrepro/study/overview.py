"""The study at a glance: every arm of the sweep plan with what its finished runs measured.

An arm is a method with its overrides and epochs (e.g. "Mixup + DM(CE)", "Mixup, 326 epochs
(AutoMix's compute)"); its runs are the plan's seeds that are stored with their evaluations.
Loads only (never trains), so the page shows the sweep as far as it has come.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from ..config import BUDGETS, RunConfig
from ..results import ResultsStore
from .collect import PendingRuns, has_evaluations
from .display import markdown_table
from .facts import method_color, method_label, scored_network
from .pooled import PoolMember, usable_pool_beside
from .scores import SCORED_TOP1, confidence_gap, run_evaluation, run_top1, scored_top1

BUDGET_EPOCHS = BUDGETS.get("cpu").overrides["epochs"]  # the study's length: its plans train at budget cpu
METRICS = (  # (column, evaluation, key); all on the scored network (short headers: the page explains them)
    ("ECE", "ece", "ece_percent_15bins"),
    ("FGSM error", "fgsm", "fgsm_error"),
    ("corruption", "corruption", "mean"),
)


@dataclass
class Arm:
    label: str
    method: str
    planned: int  # seeds the plan asks for
    records: list  # finished runs (stored, with the plan's evaluations)
    config: RunConfig | None = None  # the plan's config of the arm's first seed (what makes the arm, any seed)


def arm_label(config, budget_epochs: int) -> str:
    """The method, then every override that makes the arm (DM(CE), other options, a cosine floor, epochs)."""
    label = method_label(config.method)
    if config.method_params.get("loss") == "dm_ce":
        label += " + DM(CE)"
    for key, value in sorted(config.method_params.items()):
        if key != "loss":  # the protocol audit's arms (plans.AUDIT_ARMS)
            label += f", {key}={value}"
    if config.min_lr is not None:
        label += f", cosine floor {config.min_lr}"
    if config.epochs != budget_epochs:
        label += f", {config.epochs} epochs"
    return label


def plan_arms(plan, results_root) -> list[Arm]:
    """The plan's arms in plan order, each with its finished runs."""
    store = ResultsStore(results_root)
    arms: dict[str, Arm] = {}
    for config in plan.configs:
        label = arm_label(config, BUDGET_EPOCHS)
        arm = arms.setdefault(label, Arm(label, config.method, 0, [], config))
        arm.planned += 1
        record = store.load(config)
        if has_evaluations(record, plan.evaluations_for(config)):
            arm.records.append(record)
    return list(arms.values())


def mean_sd(values: list[float]) -> str:
    """'mean ± sd' joined by no-break spaces, so a narrow table cell never splits it over three lines."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f}\u00a0±\u00a0{statistics.stdev(values):.2f}"


def arm_values(arm: Arm, name: str | None, key: str | None) -> list[float]:
    """The arm's per-seed values of an evaluation of its scored network (``name`` None: its top-1)."""
    scored = scored_network(arm.method)
    if name is None:
        return [run_top1(r, scored) for r in arm.records]
    return [run_evaluation(r, name, key, scored) for r in arm.records if name in r.evaluations.get(scored, {})]


def arm_row(arm: Arm) -> list:
    rs = arm.records
    scored = scored_network(arm.method)
    top1 = {net: mean_sd([run_top1(r, net) for r in rs]) for net in ("online", "ema")}
    row = [arm.label, f"{len(rs)}/{arm.planned}",
           *(f"**{text}**" if net == scored and rs else text for net, text in top1.items())]
    row += [mean_sd(arm_values(arm, name, key)) for _, name, key in METRICS]
    hours = sum(float(r.summary.get("wall_time_s", 0.0)) for r in rs) / 3600
    return row + [f"{hours / len(rs):.2f}" if rs else "–"]


def overview_table(arms: list[Arm]) -> str:
    """One row per arm: seeds done/planned, online and EMA top-1 (the scored network's in bold), the scored
    network's ECE, FGSM error and corruption top-1 (%), wall-clock hours of training per run; narrow enough
    for a page."""
    headers = ["arm", "seeds", "online top-1", "EMA top-1", *[column for column, _, _ in METRICS], "hours/run"]
    return markdown_table(headers, [arm_row(a) for a in arms])


def plot_overview(arms: list[Arm]):
    """Top-1 of the scored network per arm: each seed a dot, the mean a bar."""
    import pandas as pd
    import seaborn as sns

    from .figures import new_figure, seed_dots

    rows = [{"arm": a.label, "top1": run_top1(r, scored_network(a.method))} for a in arms for r in a.records]
    done = [a for a in arms if a.records]
    fig, (ax,) = new_figure(width=7.0, height=0.32 * max(len(done), 1) + 1.2)
    if rows:
        frame = pd.DataFrame(rows)
        order = [a.label for a in done]
        palette = {a.label: method_color(a.method) for a in done}
        sns.pointplot(frame, x="top1", y="arm", hue="arm", order=order, palette=palette, errorbar=None,
                      markers="|", markersize=14, linestyle="none", legend=False, ax=ax)
        seed_dots(ax, frame, x="top1", y="arm", hue="arm", order=order, palette=palette, size=5, legend=False)
    ax.set(xlabel="test top-1 of the scored network (%), median of the last 10 epochs", ylabel="")
    fig.tight_layout()
    return fig


def is_audit_arm(arm: Arm) -> bool:
    """One of the protocol audit's arms: a cosine floor or a method option other than the loss."""
    return arm.config.min_lr is not None or bool(set(arm.config.method_params) - {"loss"})


def is_method_arm(arm: Arm) -> bool:
    """An arm with runs of the methods' table or the equal-compute arm (not one of the protocol audit's)."""
    return bool(arm.records) and not is_audit_arm(arm)


def length_arms(method: str, results_root) -> list[Arm]:
    """The study plan's arms of ``method`` alone (no option, no DM loss, no cosine floor), shortest first:
    its 120-epoch arm and, for an equal-compute baseline, its longer runs; with or without finished runs."""
    from ..plans import get_plan

    return lengths_among(plan_arms(get_plan("study"), results_root), method)


def baseline_lengths(results_root) -> dict[str, list[Arm]]:
    """Each equal-compute baseline (``plans.EQUAL_COMPUTE``) -> its :func:`length_arms`, the study's store read once."""
    from ..plans import EQUAL_COMPUTE, get_plan

    arms = plan_arms(get_plan("study"), results_root)
    return {method: lengths_among(arms, method) for method in EQUAL_COMPUTE["baselines"]}


def lengths_among(arms: list[Arm], method: str) -> list[Arm]:
    """The arms of ``method`` alone (no option, no DM loss, no cosine floor) among ``arms``, shortest first."""
    alone = [a for a in arms if a.method == method and not is_audit_arm(a) and "loss" not in a.config.method_params]
    return sorted(alone, key=lambda a: a.config.epochs)


LENGTH_STYLES = ("-", "--", ":", "-.")  # shortest arm solid, longer ones dashed, dotted, dash-dotted
# Points shown below the lowest final score and above the highest: the late epochs, where decay would show.
LENGTH_Y_SPAN, LENGTH_Y_HEADROOM = 15.0, 1.0


def plot_length_curves(length_arms_of: dict[str, list[Arm]]):
    """Test top-1 of the scored network per epoch for each length a method was trained for (one panel per
    method, seed mean, shortest first): whether a longer run ends below a shorter one (decay) is seen at a
    glance. ``length_arms_of``: method -> its :func:`length_arms`; arms without runs are left out."""
    from .figures import new_figure, seed_mean_curve

    fig, axes = new_figure(width=3.6 * len(length_arms_of), height=3.2, ncols=len(length_arms_of))
    for ax, (method, arms) in zip(axes, length_arms_of.items()):
        column, finals = f"{scored_network(method)}_top1", []
        for arm, style in zip([a for a in arms if a.records], LENGTH_STYLES):
            points = seed_mean_curve(arm.records, column)
            finals.append(points[-1][1])
            label = f"{arm.config.epochs} epochs ({len(arm.records)} seed{'s' if len(arm.records) > 1 else ''})"
            ax.plot(*zip(*points), style, color=method_color(method), marker=".", label=label)
        if finals:
            ax.set_ylim(min(finals) - LENGTH_Y_SPAN, max(finals) + LENGTH_Y_HEADROOM)
        ax.set_title(f"{method_label(method)} ({scored_network(method)} network)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("test top-1 (%)")
    fig.tight_layout()
    return fig


def spread(values: list[float], gap: float) -> list[float]:
    """``values`` (sorted) moved apart to at least ``gap`` from each other, centred on where they were, so
    stacked labels of nearby points do not overlap."""
    placed = [values[0]]
    for value in values[1:]:
        placed.append(max(value, placed[-1] + gap))
    shift = (sum(values) - sum(placed)) / len(values)
    return [y + shift for y in placed]


# Label layout of the equal-compute figure: arms costing under CROWD_RATIO x the cheapest one form the crowd
# of 120-epoch static methods, labelled in a column at LABEL_COLUMN x the cheapest cost, LABEL_LINES apart
# (as a share of the y range: 28 lines fit the axis at 6.5 pt).
CROWD_RATIO, LABEL_COLUMN, LABEL_LINES = 1.3, 0.55, 28
MEAN_SIZE, SEED_SIZE = 36, 8  # marker areas (pt^2) of an arm's mean and of each of its seeds


def plot_equal_compute(arms: list[Arm]):
    """Top-1 of the scored network against the training compute of one run (hours of one core by the
    committed bench report's step times, the measure the equal-compute epochs were set by): each arm a
    mean with its seeds, the baselines' longer runs joined to their 120-epoch arm, the learned methods'
    compute marked, so whether a learned method beats a baseline given its compute is seen at a glance."""
    from ..plans import EQUAL_COMPUTE, run_hours
    from .figures import new_figure

    fig, (ax,) = new_figure(width=7.0, height=4.4)
    drawn = list(filter(is_method_arm, arms))
    position = {}  # arm label: (hours, mean top-1)
    for arm in drawn:
        hours, top1 = run_hours(arm.config), [scored_top1(r) for r in arm.records]
        color, mean = method_color(arm.method), statistics.fmean(top1)
        ax.vlines(hours, min(top1), max(top1), color=color, linewidth=1.2)
        ax.scatter([hours] * len(top1), top1, s=SEED_SIZE, color=color, alpha=0.5, linewidths=0)
        ax.scatter([hours], [mean], s=MEAN_SIZE, color=color, edgecolors="black", linewidths=0.5, zorder=3)
        position[arm.label] = (hours, mean)
    label_points(ax, [(*position[a.label], a) for a in drawn])
    for baseline in EQUAL_COMPUTE["baselines"]:
        line = [position[a.label] for a in lengths_among(drawn, baseline)]
        if len(line) > 1:
            ax.plot(*zip(*line), color=method_color(baseline), linewidth=1, linestyle="--")
    for arm in (a for learned in EQUAL_COMPUTE["learned"] for a in lengths_among(drawn, learned)):
        hours = position[arm.label][0]
        ax.axvline(hours, color=method_color(arm.method), linewidth=0.8, linestyle=":")
        ax.annotate(f"{arm.label}'s compute", (hours, 1), xycoords=("data", "axes fraction"), xytext=(-3, -3),
                    textcoords="offset points", rotation=90, ha="right", va="top", fontsize=6.5)
    ax.set_xlim(left=0)
    ax.set(xlabel="training compute of one run (hours of one core, by the committed bench report)",
           ylabel="test top-1 of the scored network (%)")
    fig.tight_layout()
    return fig


def label_points(ax, points: list) -> None:
    """Name each arm beside its mean: the crowd of 120-epoch static methods in a spread-out column to their
    left with leader lines, the others to the right of their point."""
    cheapest = min((h for h, _, _ in points), default=0.0)
    crowd = sorted((p for p in points if p[0] < CROWD_RATIO * cheapest), key=lambda p: p[1])
    low, high = ax.get_ylim()
    if crowd:
        for (hours, mean, arm), y in zip(crowd, spread([p[1] for p in crowd], gap=(high - low) / LABEL_LINES)):
            ax.annotate(arm.label, (hours, mean), xytext=(LABEL_COLUMN * cheapest, y), textcoords="data",
                        ha="right", va="center", fontsize=6.5,
                        arrowprops={"arrowstyle": "-", "linewidth": 0.4, "color": "0.5"})
    for hours, mean, arm in points:
        if hours >= CROWD_RATIO * cheapest:
            ax.annotate(arm.label, (hours, mean), xytext=(5, 2), textcoords="offset points", fontsize=6.5)


def equal_compute_pairs(budget: str = "cpu") -> list[tuple[str, str, str]]:
    """(learned method, baseline method, baseline arm label) of the plan's equal-compute arm."""
    from ..plans import EQUAL_COMPUTE, equal_compute_epochs, load_bench_report

    report, epochs = load_bench_report(), BUDGETS.get(budget).overrides["epochs"]
    return [(learned, baseline,
             f"{method_label(baseline)}, {equal_compute_epochs(epochs, report, learned, baseline)} epochs")
            for learned in EQUAL_COMPUTE["learned"] for baseline in EQUAL_COMPUTE["baselines"]]


def seed_stats(records: list, method: str):
    from .scores import SeedStats, per_image_correct

    return SeedStats.over_runs(records, scored_top1, per_image_correct(records, scored_network(method)))


def equal_compute_checks(arms: list[Arm]) -> tuple[list, str | None]:
    """'learned method beats the baseline trained for the same CPU time', one check per pair with runs
    on common seeds (same seed: same data order and initialisation); the reason when none has."""
    from .verdicts import check_order

    by_label = {a.label: a for a in arms}
    checks, missing = [], []
    for learned, baseline, baseline_label in equal_compute_pairs():
        a_arm, b_arm = by_label.get(method_label(learned)), by_label.get(baseline_label)
        seeds = sorted({r.config.seed for r in (a_arm.records if a_arm else [])}
                       & {r.config.seed for r in (b_arm.records if b_arm else [])})
        if not seeds:
            missing.append(f"{method_label(learned)} vs {baseline_label}")
            continue
        pool = usable_pool_beside(a_arm.records[0], SCORED_TOP1, scored_top1)
        if pool is not None and pool.covers(a_arm.label) and pool.covers(b_arm.label):
            # the pooled rule compares every seed of each arm (seed effects taken off by the pool's fit)
            a = replace(seed_stats(a_arm.records, learned), pooled=PoolMember(pool, a_arm.label))
            b = replace(seed_stats(b_arm.records, baseline), pooled=PoolMember(pool, b_arm.label))
        else:
            a = seed_stats([r for r in a_arm.records if r.config.seed in seeds], learned)
            b = seed_stats([r for r in b_arm.records if r.config.seed in seeds], baseline)
        checks.append(check_order(method_label(learned), a, baseline_label, b))
    # pending study runs: with some pairs landed the verdict is provisional and names the pairs to come
    return checks, pending_arms_reason(missing)


def pending_arms_reason(names: list[str]) -> PendingRuns | None:
    """Why arms (or pairs of arms) of the study plan have no evaluated runs yet (None when none is missing);
    pending, so a claim judged on the arms that have landed is provisional."""
    if not names:
        return None
    return PendingRuns(f"not run (or not evaluated) yet at this budget: {', '.join(names)}; "
                       "`mixrepro sweep study` trains them")


def length_gain_markdown(arms: list[Arm]) -> str:
    """One row per longer run of an equal-compute baseline: its top-1 beside the same method's 120-epoch arm
    (mean over seeds), so what training longer buys a baseline reads next to what a method's choice buys."""
    from ..plans import EQUAL_COMPUTE

    rows = []
    for baseline in EQUAL_COMPUTE["baselines"]:
        lengths = [a for a in lengths_among(arms, baseline) if a.records]
        if len(lengths) < 2 or lengths[0].config.epochs != BUDGET_EPOCHS:
            continue  # no longer run yet, or no run at the budget's length to set it against
        base = seed_stats(lengths[0].records, baseline)
        for arm in lengths[1:]:
            longer = seed_stats(arm.records, baseline)
            rows.append([arm.label, longer.text(), base.text(), f"{longer.mean - base.mean:+.2f}"])
    if not rows:
        return "No longer run of a baseline has finished yet."
    return markdown_table(["longer run", "top-1", f"same method, {BUDGET_EPOCHS} epochs", "gain (points)"], rows)


def equal_compute_text(arms: list[Arm]) -> str:
    """'AutoMix 80.94 ± 0.32 (n=3) vs Mixup, 326 epochs 82.08 (1 seed)' for each pair with runs on both sides."""
    pairs = equal_compute_pairs()
    wanted = {method_label(learned) for learned, _, _ in pairs} | {label for _, _, label in pairs}
    text = {a.label: seed_stats(a.records, a.method).text() for a in arms if a.label in wanted and a.records}
    return "; ".join(f"{method_label(learned)} {text[method_label(learned)]} vs {label} {text[label]}"
                     for learned, _, label in pairs if method_label(learned) in text and label in text)


def length_calibration_markdown(length_arms_of: dict[str, list[Arm]]) -> str:
    """One row per finished length of each method (``method -> length_arms``): ECE (15 bins) and mean confidence
    minus accuracy (points, 10 bins) of the scored network, mean ± sd over seeds: whether a calibration verdict
    judged at the budget's length keeps its sign when the same method trains longer."""
    rows = []
    for method, arms in length_arms_of.items():
        scored = scored_network(method)
        for arm in (a for a in arms if a.records):
            gaps = [confidence_gap(r.evaluations[scored]["ece"]) for r in arm.records]
            rows.append([f"{method_label(method)}, {arm.config.epochs} epochs", str(len(arm.records)),
                         mean_sd(arm_values(arm, "ece", "ece_percent_15bins")), mean_sd(gaps)])
    if not rows:
        return "No method of the study has runs of several lengths yet."
    return markdown_table(["arm", "seeds", "ECE % (15 bins)", "confidence − accuracy (points)"], rows)


LOWER_IS_BETTER = ("ece", "fgsm")  # evaluations where less is better (calibration error, attack success)


def equal_compute_metrics_markdown(arms: list[Arm]) -> str:
    """One row per equal-compute pair with runs on both sides: the learned method's and the baseline's mean
    top-1, ECE, FGSM error and corruption top-1 (scored networks) and their difference, in bold where the
    learned method is the better one: whether what it loses in accuracy at equal compute buys robustness."""
    by_label = {a.label: a for a in arms if a.records}
    metrics = (("top-1", None, None), *METRICS)
    rows = []
    for learned, _, baseline_label in equal_compute_pairs():
        a, b = by_label.get(method_label(learned)), by_label.get(baseline_label)
        if a is None or b is None:
            continue
        cells = []
        for _, name, key in metrics:
            mean_a, mean_b = statistics.fmean(arm_values(a, name, key)), statistics.fmean(arm_values(b, name, key))
            better = (mean_a < mean_b) if name in LOWER_IS_BETTER else (mean_a > mean_b)
            text = f"{mean_a:.2f} vs {mean_b:.2f} ({mean_a - mean_b:+.2f})"
            cells.append(f"**{text}**" if better else text)
        rows.append([f"{a.label} ({len(a.records)} seeds) vs {b.label} ({len(b.records)})", *cells])
    if not rows:
        return "No equal-compute pair has runs on both sides yet."
    return markdown_table(["learned vs baseline, same compute", *[column for column, _, _ in metrics]], rows)


POOLED_METRICS = (("top-1 (scored network)", None, None), *METRICS, ("mixed-sample top-1", "mixed_accuracy", "top1"))


def pools_table(results_root) -> str:
    """One row per metric: the seed spread pooled over the study's arms (``mixrepro.study.pooled``), the seed
    effects it removed, the arms it left out, and the smallest gap it detects between two methods of three
    seeds each (80 % power, 95 % two-sided)."""
    from .paired import detectable_noncentrality
    from .pooled import pool_over_study

    rows = []
    for label, name, key in POOLED_METRICS:
        def value_of(r, name=name, key=key):
            return scored_top1(r) if name is None else run_evaluation(r, name, key, scored_network(r.config.method))

        pool = pool_over_study(results_root, label, value_of)
        effects = ", ".join(f"seed {seed}: {effect:+.2f}" for seed, effect in pool.seed_effects) or "–"
        left_out = ", ".join(f"{arm} (p = {p:.2g})" for arm, p in pool.left_out) or "none"
        gap = f"{detectable_noncentrality(pool.dof) * pool.sd * (2 / 3) ** 0.5:.2f}" if pool.dof >= 1 else "–"
        rows.append([label, sum(1 for n in pool.seeds_per_arm if n > 1), f"{pool.sd:.2f}", pool.dof, effects,
                     left_out, gap if pool.usable else f"({gap}: too few df, per-pair rule)"])
    headers = ["metric", "arms with 2+ seeds", "pooled seed sd", "df", "seed effect vs seed 0", "left out",
               "smallest detectable gap, 3 vs 3 seeds, this pool"]
    return markdown_table(headers, rows)


def machine_text(machine: dict) -> str:
    """'AMD EPYC, AVX512, torch 2.13.0+cpu'; a field a run did not record reads 'kernels not recorded'."""
    kernels = machine.get("cpu_capability") or "kernels not recorded"
    return f"{machine.get('device_name') or 'unknown CPU'}, {kernels}, torch {machine.get('torch') or '?'}"


def verification_outcome(entry: dict) -> str:
    if entry["identical"]:
        return "**bit for bit**"
    moved = sorted(entry["max_abs_difference"].items(), key=lambda kv: -kv[1])[:3]
    return "**differs**: " + ", ".join(f"{column} by {gap:.3g}" for column, gap in moved)


def verifications_table(results_root) -> str:
    """One row per recorded ``mixrepro verify --record``: the run, the epochs retrained, whether every
    per-epoch number came back bit for bit, the machine that trained it and the one that retrained it."""
    from ..verify import load_verifications

    store = ResultsStore(results_root)
    rows = []
    for entry in load_verifications(results_root):
        record = store.load_dir(store.root / entry["run_dir"])
        rows.append([f"{arm_label(record.config, BUDGET_EPOCHS)}, seed {entry['seed']} (`{entry['key']}`)",
                     f"{entry['epochs_compared']} of {entry['epochs']}", verification_outcome(entry),
                     machine_text(entry["trained_on"]), machine_text(entry["verified_on"]), entry["verified_at"][:10]])
    if not rows:
        return ("No verification is recorded yet: `mixrepro verify --epochs 2 --record RUN_DIR` retrains a run's "
                "first two epochs here and records the outcome.")
    headers = ["run", "epochs retrained", "outcome", "trained on", "retrained on", "date"]
    return markdown_table(headers, rows)
