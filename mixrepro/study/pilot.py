"""The reduced-budget pilot: which cpu setting lets Mixup's gain over Vanilla stand out from seed noise.

Reads the runs of a sweep plan (``mixrepro.sweep``) from the store without training,
groups them by setting (training images x epochs), and compares Mixup with Vanilla
paired over seeds and per test image. A setting qualifies for the study's ``cpu``
budget when the paired check supports "Mixup beats Vanilla" (the gain exceeds what
the seeds' spread allows); among qualifying settings the cheaper one wins.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..results import ResultsStore
from .display import markdown_table
from .facts import method_label
from .paired import mcnemar
from .scores import SeedStats, per_image_correct
from .verdicts import check_order


@dataclass(frozen=True)
class PilotRun:
    setting: str  # e.g. "10,000 images x 120 epochs"
    method: str
    seed: int
    record: object | None  # RunRecord, or None while the run is pending


def setting_name(config) -> str:
    images = f"{config.train_subset:,}" if config.train_subset else "all 50,000"
    return f"{images} images x {config.epochs} epochs"


def pilot_runs(plan_name: str = "pilot", results_root=None) -> list[PilotRun]:
    """Every run of the plan, with its stored record or None where it has not finished yet."""
    from ..plans import get_plan

    store = ResultsStore(results_root)
    return [PilotRun(setting_name(c), c.method, c.seed, store.load(c)) for c in get_plan(plan_name).configs]


def runs_table(runs: list[PilotRun]) -> str:
    """One row per planned run: setting, method, seed, online and EMA top-1, wall time, images/s."""
    rows = []
    for run in runs:
        if run.record is None:
            rows.append([run.setting, method_label(run.method), run.seed, "pending", "", "", ""])
            continue
        s = run.record.summary
        rows.append([run.setting, method_label(run.method), run.seed, f"{s['online']['median_last10']:.2f}",
                     f"{s['ema']['median_last10']:.2f}", f"{s['wall_time_s'] / 3600:.2f}",
                     f"{s['train_images_per_s']:.0f}"])
    return markdown_table(["setting", "method", "seed", "online top-1 (median last 10)", "EMA top-1",
                           "wall time (h)", "images/s"], rows)


def _paired_records(runs: list[PilotRun], setting: str) -> tuple[list, list]:
    """Vanilla and Mixup records of ``setting`` for the seeds where both finished, in seed order."""
    by = {(r.method, r.seed): r.record for r in runs if r.setting == setting and r.record is not None}
    seeds = sorted(s for (m, s) in by if m == "mixup" and ("vanilla", s) in by)
    return [by[("vanilla", s)] for s in seeds], [by[("mixup", s)] for s in seeds]


def compare_setting(runs: list[PilotRun], setting: str, network: str = "online") -> dict:
    """Mixup vs Vanilla at one setting: per-seed gaps, the paired check, McNemar per seed, CPU-hours."""
    vanilla, mixup = _paired_records(runs, setting)
    if not vanilla:
        return {"setting": setting, "seeds": 0, "runs": []}
    score = lambda r: r.summary[network]["median_last10"]  # noqa: E731
    a = SeedStats.over_runs(mixup, score, per_image_correct(mixup, network))
    b = SeedStats.over_runs(vanilla, score, per_image_correct(vanilla, network))
    check = check_order("Mixup", a, "Vanilla", b)
    mcnemar_p = [mcnemar(x, y).p_value for x, y in zip(a.correct, b.correct)]
    hours = sum(r.summary["wall_time_s"] for r in vanilla + mixup) / 3600 / (2 * len(vanilla))
    return {"setting": setting, "seeds": len(vanilla), "gaps": [x - y for x, y in zip(a.values, b.values)],
            "check": check, "mcnemar_p": mcnemar_p, "hours_per_run": hours, "runs": vanilla + mixup,
            "vanilla_mean": statistics.fmean(b.values), "mixup_mean": statistics.fmean(a.values)}


def gap_text(comparison: dict) -> str:
    """'Mixup − Vanilla −2.55, −1.83 (seeds paired)' for a verdict's 'ours' ('' before paired seeds exist)."""
    if not comparison["seeds"]:
        return ""
    return "Mixup − Vanilla " + ", ".join(f"{g:+.2f}" for g in comparison["gaps"]) + " points, per paired seed"


def comparison_table(comparisons: list[dict]) -> str:
    rows = []
    for c in comparisons:
        if not c["seeds"]:
            rows.append([c["setting"], 0, "", "", "no paired seeds yet", ""])
            continue
        gaps = ", ".join(f"{g:+.2f}" for g in c["gaps"])
        p = ", ".join(f"{v:.2g}" for v in c["mcnemar_p"]) or "–"
        rows.append([c["setting"], c["seeds"], gaps, p, f"**{c['check'].outcome}**: {c['check'].detail}",
                     f"{c['hours_per_run']:.2f}"])
    return markdown_table(["setting", "paired seeds", "Mixup − Vanilla per seed (points)",
                           "McNemar p per seed", "paired check (Mixup beats Vanilla)", "wall hours per run"], rows)


def choose_setting(comparisons: list[dict], planned_seeds: int = 2) -> tuple[str | None, str]:
    """(setting, how it was chosen): the stated rule, or its fallback once every planned seed is in.

    The rule: the cheapest setting whose paired check supports 'Mixup beats Vanilla'. With two
    seeds the paired interval has one degree of freedom and can rarely support anything, so when
    all runs are finished and no setting qualifies, the fallback drops every setting where each
    seed's McNemar test finds Mixup significantly *worse* (p < 0.05, negative gap: the regime
    where the claims do not apply) and takes the remaining setting with the largest mean gap.
    """
    done = [c for c in comparisons if c["seeds"] >= 2]
    qualifying = [c for c in done if c["check"].outcome == "supports"]
    if qualifying:
        return min(qualifying, key=lambda c: c["hours_per_run"])["setting"], "rule"
    if not comparisons or any(c["seeds"] < planned_seeds for c in comparisons):
        return None, "waiting"
    plausible = [c for c in done if not mixup_significantly_worse(c)]
    if not plausible:
        return None, "none plausible"
    return max(plausible, key=lambda c: statistics.fmean(c["gaps"]))["setting"], "fallback"


def mixup_significantly_worse(comparison: dict, level: float = 0.05) -> bool:
    """Every seed's gap negative with McNemar p below ``level``."""
    return all(g < 0 and p < level for g, p in zip(comparison["gaps"], comparison["mcnemar_p"]))


def decision_text(chosen: str | None, how: str) -> str:
    if how == "rule":
        return f"**Chosen cpu setting: {chosen}**, by the stated rule (the paired check supports the gain)."
    if how == "fallback":
        return (f"**Chosen cpu setting: {chosen}**, by the fallback rule: with two seeds the paired check "
                "cannot support a gain this size in any setting (see the smallest detectable differences), so "
                "settings where every seed's McNemar test finds Mixup significantly worse are dropped and the "
                "remaining setting with the largest mean gap is taken. It is a setting where the claims can "
                "hold, not one where Mixup's gain is shown: whether it is, is a claim the study itself tests.")
    if how == "none plausible":
        return "**No setting is usable**: Mixup is significantly worse than Vanilla at every seed of every setting."
    return "**No setting qualifies yet**: the decision waits for the remaining runs."


def plot_pilot_curves(runs: list[PilotRun], network: str = "online"):
    """One panel per setting: test top-1 at the scored epochs, each run a line (colour = method)."""
    from .facts import method_color
    from .figures import new_figure

    settings = list(dict.fromkeys(r.setting for r in runs))
    fig, axes = new_figure(width=4.2 * len(settings), height=3.2, ncols=len(settings))
    for ax, setting in zip(axes, settings):
        for run in (r for r in runs if r.setting == setting and r.record is not None):
            points = [(row["epoch"], row[f"{network}_top1"]) for row in run.record.epochs
                      if row.get(f"{network}_top1") is not None]
            ax.plot(*zip(*points), marker=".", color=method_color(run.method), alpha=0.85,
                    linestyle="-" if run.seed == 0 else "--", label=f"{method_label(run.method)} seed {run.seed}")
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"test top-1, {network} network (%)")
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def budget_agreement(runs: list[PilotRun], setting: str) -> str:
    """Whether the ``cpu`` budget trains exactly the chosen setting's runs (same config keys)."""
    from ..config import config_for_budget

    chosen = [r for r in runs if r.setting == setting]
    same = [r for r in chosen
            if config_for_budget("cpu", method=r.method, dataset=r.record.config.dataset, seed=r.seed)
            == r.record.config] if all(r.record is not None for r in chosen) else []
    if chosen and len(same) == len(chosen):
        return (f"The study's `cpu` budget (`mixrepro.config.BUDGETS`) is this setting: its Vanilla and Mixup "
                f"runs are these {len(same)} runs, reused by the study, not retrained.")
    return "**The `cpu` budget does not match the chosen setting**: update `mixrepro.config.BUDGETS`."
