"""The protocol audit of committed reduced-budget runs: EMA horizon, online vs EMA, learned-mask statistics.

Loads runs only (never trains). Learned-mask statistics are read from the columns each
run's ``epochs.csv`` has: runs from before the learned methods shared one set of log
keys name them per method (``LEGACY_MASK_COLUMNS``).
"""
from __future__ import annotations

import math
import statistics

from ..methods import METHODS
from ..methods.base import automix_momentum, ema_horizon
from ..plans import Arm
from ..runs import train_or_load
from .display import markdown_table
from .facts import method_label, scored_network
from .paired import Check

# method: (|mask mean - lambda|, spatial std, largest source weight) columns of runs logged
# before the shared Mix Block log keys (mixrepro.methods.mixblock).
LEGACY_MASK_COLUMNS = {
    "automix": ("mask_mean_gap_gen", "mask_std_gen", None),
    "samix": ("mask_mean_gap_gen", "mask_std_gen", None),
    "adautomix": ("mask_mean_gap", "mask_std", "mask_max"),
}
HORIZON_POINTS = [("start", 0.0), ("end of the constant phase (10%)", 0.1), ("half-way", 0.5), ("90%", 0.9)]


def load_audited(audited, results_dir, methods, seed: int, short_epochs: int):
    """(the long Mixup run, {method: short run}) of the audited budget, loaded without training.

    The audit is about the runs as they were made: runs of older method code (stale) are read as
    they are, and their code version is part of what the page reports."""
    def load(method, **fields):
        return train_or_load(audited.config(method, seed, **fields), results_root=results_dir, train=False,
                             accept_stale=True)

    return load("mixup"), {m: load(m, epochs=short_epochs) for m in methods}


def online_minus_ema_text(long_run, short_runs: dict) -> str:
    """'online − EMA +31.02 (Mixup, 30 epochs); +24.32 to +32.74 (3-epoch runs)': the finding in numbers."""
    long_gap = long_run.summary["online"]["median_last10"] - long_run.summary["ema"]["median_last10"]
    text = f"online − EMA {long_gap:+.2f} (Mixup, {long_run.config.epochs} epochs)"
    gaps = [r.curve("online_top1")[-1] - r.curve("ema_top1")[-1] for r in short_runs.values()]
    if gaps:
        epochs = "/".join(sorted({str(r.config.epochs) for r in short_runs.values()}))
        text += f"; {min(gaps):+.2f} to {max(gaps):+.2f} ({len(gaps)} runs of {epochs} epochs)"
    return text


def horizon_table(epochs: int, steps_per_epoch: int) -> str:
    """The paper schedule's averaging horizon at points of a run of ``epochs`` epochs."""
    steps = epochs * steps_per_epoch
    rows = []
    for label, progress in HORIZON_POINTS + [("last iteration", (steps - 1) / steps)]:
        m = automix_momentum(progress)
        horizon = ema_horizon(m)
        rows.append([label, f"{progress * epochs:.1f}", f"{m:.6f}", f"{horizon:,.0f}",
                     f"{horizon / steps_per_epoch:,.1f}", f"{horizon / steps:,.2f}"])
    return markdown_table(["horizon at", "epoch", "m", "horizon (iterations)", "horizon (epochs)",
                           "horizon / run length"], rows)


def _cell(row, column, digits):
    return "–" if column is None or row.get(column) is None else f"{row[column]:.{digits}f}"


def short_runs_table(short_runs: dict) -> tuple[str, list[float], list[float]]:
    """(table per method and epoch, every mask spatial std, every |mask mean - lambda|)."""
    rows, stds, gaps = [], [], []
    for method, record in short_runs.items():
        gap_col, std_col, max_col = LEGACY_MASK_COLUMNS.get(method, (None, None, None))
        for row in record.epochs:
            rows.append([method_label(method), row["epoch"], f"{row['online_top1']:.2f}", f"{row['ema_top1']:.2f}",
                         _cell(row, gap_col, 3), _cell(row, std_col, 4), _cell(row, max_col, 3)])
            if std_col:
                stds.append(row[std_col])
                gaps.append(row[gap_col])
    table = markdown_table(["method", "epoch", "online top-1 (%)", "EMA top-1 (%)", "|mask mean − λ|",
                            "mask spatial std", "AdAutoMix mask_max"], rows)
    return table, stds, gaps


def binary_mask_std() -> float:
    """Spatial std of a {0, 1} mask covering half the image: what a decisive mask would show."""
    return math.sqrt(0.5 * 0.5)


# ----------------------------------------------------------------------------------------------
# The lambda response of the study's learned runs (does the mask mean follow lambda?)
# ----------------------------------------------------------------------------------------------


def final_lambda_response(record) -> dict | None:
    """Correlation, slope and |mask mean - lambda| of the last epoch that logged them, with the
    lambda-blind floor and the saturated fraction; None for a run without those logs."""
    from ..methods.mixblock import LAMBDA_RESPONSE_KEYS, MASK_SATURATED, lambda_response

    rows = [r for r in record.epochs if all(r.get(k) not in (None, "") for k in LAMBDA_RESPONSE_KEYS[:6])]
    if not rows:
        return None
    method_cls = METHODS.get(record.config.method)
    params = {**method_cls.default_params, **record.config.method_params}
    floor = method_cls.lambda_floor_of(params) if hasattr(method_cls, "lambda_floor_of") else None
    response = lambda_response({k: float(v) for k, v in rows[-1].items() if v not in (None, "")}, floor)
    return {**response, "epoch": int(rows[-1]["epoch"]), "saturated": rows[-1].get(MASK_SATURATED)}


def lambda_response_table(runs: dict) -> str:
    """One row per learned run: the final epoch's lambda response beside the lambda-blind floor."""
    rows = []
    for method, records in runs.items():
        for record in records:
            r = final_lambda_response(record)
            if r is None:
                continue
            rows.append([method_label(method), record.config.seed, r["epoch"], f"{r['correlation']:.2f}",
                         f"{r['slope']:.2f}", f"{r['abs_gap']:.3f}", f"{r.get('floor', math.nan):.3f}",
                         "–" if r["saturated"] in (None, "") else f"{float(r['saturated']):.2f}"])
    headers = ["method", "seed", "epoch", "corr(mask mean, λ)", "slope", "|mask mean − λ|",
               "λ-blind floor", "saturated fraction"]
    return markdown_table(headers, rows) if rows else ""


# ---------------------------------------------------------------------------------------------- scoring rules
# How a run's number is read off its curves. The papers state "median of the last 10 epochs" of the
# EMA network for the learned mixers; the reference code's window holds 11 epochs, and its logs
# report the best epoch of either head. Each rule is a function of a run's summary.
SCORING_RULES = {
    "online, median of last 10": lambda s: s["online"]["median_last10"],
    "EMA, median of last 10": lambda s: s["ema"]["median_last10"],
    "EMA, median of last 11 (reference window)": lambda s: s["ema"]["median_ref_window11"],
    "best epoch of either head (reference logs)": lambda s: max(s["online"]["best"], s["ema"]["best"]),
    "online, final epoch": lambda s: s["online"]["final"],
}
# The reference code's ECE sorts the per-bin accuracies and confidences independently before pairing
# them, so a bin's accuracy meets another bin's confidence (mixrepro.evaluate.calibration).
ECE_RULES = {"ECE, 10 bins": "ece_percent_10bins",
             "reference code's ECE (sorted pairing)": "ece_percent_10bins_reference_sorted_WRONG"}


def rule_scores(runs: dict) -> dict[str, dict[str, float]]:
    """{rule: {method: seed-mean top-1 under that rule}} for every SCORING_RULES rule."""
    return {rule: {m: statistics.fmean(read(r.summary) for r in records) for m, records in runs.items()}
            for rule, read in SCORING_RULES.items()}


def ece_evaluated(runs: dict) -> dict[str, list]:
    """{method: its runs with an ECE evaluation of the scored network} (later seeds may lack one)."""
    return {m: [r for r in rs if "ece" in r.evaluations.get(scored_network(m), {})] for m, rs in runs.items()}


def ece_rule_scores(runs: dict) -> dict[str, dict[str, float]]:
    """{ECE rule: {method: mean ECE % of the scored network over the runs evaluated with 'ece'}}."""
    evaluated = ece_evaluated(runs)
    return {rule: {m: statistics.fmean(r.evaluations[scored_network(m)]["ece"][key] for r in rs)
                   for m, rs in evaluated.items() if rs}
            for rule, key in ECE_RULES.items()}


def ece_run_counts(runs: dict) -> dict[str, int]:
    """{method: how many of its runs have an ECE evaluation of the scored network}."""
    return {m: len(rs) for m, rs in ece_evaluated(runs).items()}


def ranks(scores: dict[str, float], higher_is_better: bool = True) -> dict[str, int]:
    """{method: rank}, 1 the best; ties share the better rank."""
    values = sorted(scores.values(), reverse=higher_is_better)
    return {m: values.index(v) + 1 for m, v in scores.items()}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall's tau-a between two scorings of the same methods (1: same order, -1: reversed)."""
    methods = list(a)
    pairs = [(x, y) for i, x in enumerate(methods) for y in methods[i + 1:]]
    if not pairs:
        return 1.0
    sign = [math.copysign(1, (a[x] - a[y]) * (b[x] - b[y])) if (a[x] - a[y]) * (b[x] - b[y]) else 0 for x, y in pairs]
    return sum(sign) / len(pairs)


def rules_markdown(scores: dict[str, dict[str, float]], counts: dict[str, int], higher_is_better: bool = True,
                   digits: int = 2) -> str:
    """Methods x rules, each cell 'value (rank)', with each method's number of runs (``counts``);
    a last row gives each rule's Kendall tau to the first rule."""
    rules = list(scores)
    methods = list(scores[rules[0]])
    ranked = {rule: ranks(scores[rule], higher_is_better) for rule in rules}
    rows = [[method_label(m), counts[m]] + [f"{scores[rule][m]:.{digits}f} ({ranked[rule][m]})" for rule in rules]
            for m in methods]
    rows.append([f"Kendall τ to '{rules[0]}'", ""] + [f"{kendall_tau(scores[rules[0]], scores[rule]):.2f}"
                                                      for rule in rules])
    return markdown_table(["method", "runs"] + rules, rows)


def rank_changes(scores: dict[str, dict[str, float]], higher_is_better: bool = True) -> list[str]:
    """Sentences naming each rule under which the best method differs from the first rule's."""
    rules = list(scores)
    best = {rule: min(ranks(scores[rule], higher_is_better).items(), key=lambda kv: kv[1])[0] for rule in rules}
    return [f"under '{rule}' the best is {method_label(best[rule])}, not {method_label(best[rules[0]])}"
            for rule in rules[1:] if best[rule] != best[rules[0]]]


# --------------------------------------------------------------------------- section 6: training arms


def arm_pair(audit_arm, results_dir, seed: int = 0):
    """(our run, the reference-choice run) of one ``plans.AuditArm`` at seed ``seed``; None where not stored."""
    from ..results import ResultsStore

    store = ResultsStore(results_dir)
    return store.load(audit_arm.ours.config(seed)), store.load(audit_arm.reference.config(seed))


def arm_hours(arm) -> float | None:
    """Hours of one core the arm's one run costs at the cpu budget (committed bench report), None if untimed."""
    from .costs import cpu_hours

    return cpu_hours([arm.config(0)])  # the plan trains an audit arm with one seed


def arm_reading(ours, reference) -> dict:
    """Top-1 of both runs (median of the last 10 epochs, the scored network), their difference, and the
    image-level McNemar test on the final networks (it says whether the two networks differ, which
    includes the randomness of two trainings, not only the choice)."""
    from .paired import mcnemar
    from .scores import per_image_correct, run_top1

    network = scored_network(ours.config.method)
    row = {"network": network, "ours": run_top1(ours, network), "reference": run_top1(reference, network)}
    row["difference"] = row["reference"] - row["ours"]
    correct = per_image_correct([reference, ours], network)
    if correct:
        test = mcnemar(*correct)
        row.update(final_difference=test.difference_points, p_value=test.p_value)
    return row


def seed_spread(runs: dict) -> tuple[float | None, int]:
    """(pooled standard deviation of the scored top-1 over seeds, methods it pools) of the study's runs.

    A choice's effect is measured by one run each, so the question is whether the difference is larger
    than two runs of one method differ by seed alone. The spread is the study's pooled one
    (``pooled.pool_seed_variance``: seed effects removed, an arm that spreads far more left out).
    """
    from .pooled import pool_seed_variance
    from .scores import run_top1

    pool = pool_seed_variance({method: {int(r.config.seed): run_top1(r, scored_network(method)) for r in records}
                               for method, records in runs.items()}, "top-1 of the scored network")
    return (pool.sd if pool.dof else None), sum(1 for n in pool.seeds_per_arm if n > 1)


def seed_noise(spread: float) -> float:
    """Twice the sd of the difference between two single runs whose seeds differ (pooled seed sd ``spread``)."""
    return 2 * math.sqrt(2) * spread


def beyond_seed_noise(difference: float, spread: float) -> bool:
    """The section's rule: one run each differs by more than :func:`seed_noise`."""
    return abs(difference) > seed_noise(spread)


def arm_verdict(row: dict, spread: float | None) -> str:
    """Whether one run with the reference choice differs from ours by more than seed noise, and per image."""
    if spread is None:
        reading = "one run each; no seed spread measured yet"
    else:
        noise = seed_noise(spread)
        if beyond_seed_noise(row["difference"], spread):
            reading = f"{'raises' if row['difference'] > 0 else 'lowers'} top-1 beyond seed noise (> {noise:.2f})"
        else:
            reading = f"within seed noise (<= {noise:.2f})"
    if "p_value" in row:
        reading += f"; final networks per image: p = {row['p_value']:.3f}"
    return reading


def training_arms_markdown(audit_arms, results_dir, spread: float | None, seed: int = 0) -> tuple[str, int]:
    """The section-6 table (one row per arm) and how many arms have both runs; ``spread`` from ``seed_spread``."""
    rows, done = [], 0
    for audit_arm in audit_arms:
        ours, reference = arm_pair(audit_arm, results_dir, seed)
        if ours is None or reference is None:
            missing = [arm for arm, run in ((audit_arm.ours, ours), (audit_arm.reference, reference)) if run is None]
            hours = [arm_hours(arm) for arm in missing]
            cost = f"about {sum(hours):.1f} h of one core" if None not in hours else "cost not timed"
            waiting = "both runs" if ours is None and reference is None else \
                ("the reference-choice run" if reference is None else "our run")
            rows.append([audit_arm.finding, "–", "–", "–", "–", f"not run yet: {waiting} ({cost})"])
            continue
        done += 1
        row = arm_reading(ours, reference)
        final = f"{row['final_difference']:+.2f}" if "final_difference" in row else "–"
        rows.append([audit_arm.finding, f"{row['ours']:.2f} ({row['network']})", f"{row['reference']:.2f}",
                     f"{row['difference']:+.2f}", final, arm_verdict(row, spread)])
    header = ["arm", "top-1, our default", "top-1, reference choice", "reference - ours, median of last 10",
              "reference - ours, final networks per image", "reading"]
    return markdown_table(header, rows), done


# --------------------------------------------------------------------------- section 6: the cosine floor


def floor_arms(audit_arms) -> list:
    """The arms that give a static mixer the learned mixers' cosine floor (ours: the method's own, 0)."""
    return [arm for arm in audit_arms if arm.reference.min_lr is not None and arm.ours.min_lr is None]


def arm_check(statement: str, row: dict, spread: float | None, lowers: bool) -> Check:
    """One arm's difference (reference - ours) read by the section's rule (:func:`beyond_seed_noise`): it
    supports '``statement``' (the choice lowers top-1 when ``lowers``, raises it otherwise) only beyond
    seed noise, and contradicts it beyond seed noise the other way."""
    detail = f"{row['difference']:+.2f} points (one run each, scored network {row['network']})"
    if spread is None:
        return Check(statement, "inconclusive", detail + "; no seed spread measured yet")
    if "p_value" in row:
        detail += f"; final networks per image: p = {row['p_value']:.3f} (reported, not deciding)"
    claimed_side = (row["difference"] < 0) == lowers
    outcome = ("inconclusive" if not beyond_seed_noise(row["difference"], spread)
               else "supports" if claimed_side else "contradicts")
    noise = seed_noise(spread)
    return Check(statement, outcome, detail + f"; seed noise {noise:.2f}", detectable=noise)


def floor_pairs(audit_arms, results_dir, seed: int = 0) -> list[tuple]:
    """(arm, our run, the run at the learned mixers' floor) of each floor arm; a run is None where not stored."""
    return [(arm, *arm_pair(arm, results_dir, seed)) for arm in floor_arms(audit_arms)]


def floor_text(audit_arms, results_dir, seed: int = 0) -> str:
    """'Mixup 80.34 -> 79.80 with floor 0.05 (-0.54); ...': each static mixer's scored top-1 at its own floor and
    at the learned mixers' (seed ``seed``), for the finding's 'ours' column ('' before any pair is run)."""
    parts = []
    for arm, ours, reference in floor_pairs(audit_arms, results_dir, seed):
        if ours is not None and reference is not None:
            row = arm_reading(ours, reference)
            parts.append(f"{method_label(arm.ours.method)} {row['ours']:.2f} → {row['reference']:.2f} with floor "
                         f"{arm.reference.min_lr:g} ({row['difference']:+.2f})")
    return "; ".join(parts)


def floor_checks(audit_arms, results_dir, spread: float | None, seed: int = 0) -> tuple[list, list, str | None]:
    """(a check per floor arm with both runs: '<method> scores lower with the cosine floor 0.05', the runs,
    why an arm is missing or None)."""
    checks, runs, missing = [], [], []
    for arm, ours, reference in floor_pairs(audit_arms, results_dir, seed):
        label = method_label(arm.ours.method)
        if ours is None or reference is None:
            missing.append(f"{label} with floor {arm.reference.min_lr:g}, seed {seed} (`mixrepro sweep study`)")
            continue
        own = METHODS.get(arm.ours.method).default_min_lr
        statement = f"{label} scores lower with the cosine floor {arm.reference.min_lr:g} than with its own {own:g}"
        checks.append(arm_check(statement, arm_reading(ours, reference), spread, lowers=True))
        runs += [ours, reference]
    return checks, runs, ("not run yet: " + "; ".join(missing)) if missing else None


def floor_margins_markdown(audit_arms, results_dir, learned=("automix", "samix", "adautomix"), seed: int = 0) -> str:
    """How the floor moves each learned mixer's margin over each static one (seed ``seed``, scored networks):
    the learned mixer's study run (its own floor) minus the static mixer at its own floor (the
    reference's comparison) and at the learned mixers' floor (an equal comparison); '' when no pair
    has all three runs."""
    from ..results import ResultsStore
    from .scores import run_top1

    store = ResultsStore(results_dir)
    static = [(arm.ours.method, run_top1(ours, scored_network(arm.ours.method)),
               run_top1(reference, scored_network(arm.ours.method)))
              for arm, ours, reference in floor_pairs(audit_arms, results_dir, seed)
              if ours is not None and reference is not None]
    rows = []
    for method in learned:
        run = store.load(Arm(method).config(seed))  # the study's run: the method's defaults, its own floor
        if run is None:
            continue
        top1 = run_top1(run, scored_network(method))
        rows += [[method_label(method), method_label(other), f"{top1:.2f}", f"{top1 - own:+.2f}",
                  f"{top1 - floored:+.2f}"] for other, own, floored in static]
    return markdown_table(["learned mixer (its own floor)", "static mixer", "learned top-1",
                           "margin, static at its own floor (reference)",
                           "margin, static at the learned mixers' floor (equal)"], rows) if rows else ""
