"""Checks of a claim against our numbers and the verdict rule that turns them into a verdict.

The verdict rule
----------------
Every check ends in one of three outcomes: *supports*, *contradicts* or
*inconclusive* (the numbers we could afford cannot tell; the check then prints the
smallest difference its seeds could have detected).

* ``check_order(a, b)`` ("a beats b"), for two arms of the study plan at the cpu budget
  that the study's pooled seed spread of the metric covers (``mixrepro.study.pooled``):
  the t interval of the difference of the two arms' effects (their means with every seed's
  shared effect taken off), with the standard error from the residual spread of all arms'
  seeds, decides (95 %): wholly on the claimed side supports, wholly on the other side
  contradicts, otherwise inconclusive.
* ``check_order(a, b)`` otherwise (an arm whose seeds spread more than the pool allows, an
  ablation arm, another budget): seeds are paired (same seed = same data order and
  initialisation), so with two or more shared seeds the paired t interval of the per-seed
  differences decides in the same way. With one seed, McNemar's exact test on the two
  networks' per-image results decides when it is significant (p < 0.05), else the check
  is inconclusive (``mixrepro.study.paired``); a one-seed method against one with more
  seeds is compared network by network (``check_against_every_network``).
* ``check_close(ours, paper)`` supports when ``|mean - paper| <= max(2 SE, tol)``
  (tol 0.5 points by default) and contradicts otherwise. It is only made where our
  protocol equals the paper's (:func:`comparable_to_paper`).
* ``check_not_worse(a, b)`` supports when a trails b by at most ``max(2 SE, tol)``.

A claim's verdict (:func:`judge`): *not tested here* when the data, model or
method is unavailable (the reason is recorded), or when the claim needs trained
networks and the budget is ``smoke`` (two epochs on 1,000 images only show that
the code runs); otherwise the rule of ``mixrepro.study.paired.decide``: every check
supports -> *reproduced*; some contradict and none supports -> *not reproduced*;
supports mixed with contradicts or inconclusive -> *partly*; all inconclusive ->
*inconclusive at this budget*.

Provisional verdicts: while the study's sweep has not yet run every seed a claim asks for,
but every method has at least one, the rule is applied to the seeds run so far and the
verdict is marked *provisional* (:func:`provisional`; its reason names the runs still to
come). A claim missing a method entirely, or runs whose data is not here, stays untested."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..config import BUDGETS
from ..errors import InvalidParameterError
from .display import fmt, glue, markdown_table
from .paired import VERDICTS, Check, check_ranking, decide  # noqa: F401  (VERDICTS: the ledger reads it here)
from .paper_tables import PaperTable, comparable_to_paper
from .pooled import check_pooled
from .scores import SeedStats

EVIDENCE_BUDGETS = ("cpu", "cpu-short", "gpu", "paper")  # budgets whose numbers count as evidence
VERDICTS_OUTPUT_KEY = "mixrepro_verdicts"  # output metadata key the claims ledger looks for
K_SE = 2.0
DEFAULT_TOLERANCE = 0.5


def check_order(name_a: str, a: SeedStats, name_b: str, b: SeedStats, *, higher_is_better: bool = True,
                unit: str = "points", quantity: str = "") -> Check:
    """'a is better than b' (the paper's claim): by the pooled seed spread where both carry the same pool,
    else paired over seeds (module rule).

    ``higher_is_better=False`` states the claim as 'a is lower than b' (ECE, FGSM error);
    ``quantity`` names what is compared in the statement (e.g. 'FGSM error'). Per-image
    results of the first seed add McNemar's test (``SeedStats.correct``) or, for a score that is not an
    accuracy (ECE), a paired bootstrap over the images (``SeedStats.images``). Where both know
    their seeds, only the seeds both have are compared (a method with a third evaluated
    seed is not paired against nothing).
    """
    claimed = "a>b" if higher_is_better else "b>a"
    if a.pooled is not None and b.pooled is not None and a.pooled.pool == b.pooled.pool:
        check = check_pooled(name_a, a.pooled.arm, name_b, b.pooled.arm, a.pooled.pool, claimed=claimed)
    else:
        shared_a, shared_b = a.paired_with(b)
        if shared_a.n == 1 and max(a.n, b.n) > 1 and a.seeds and b.seeds:
            return check_against_every_network(name_a, a, name_b, b, higher_is_better=higher_is_better, unit=unit,
                                               quantity=quantity)
        check = _check_paired(name_a, shared_a, name_b, shared_b, claimed)
    word = "higher" if higher_is_better else "lower"
    subject = f"{name_a} {quantity}".strip()
    return Check(f"{subject} {word} than {name_b}", check.outcome, check.detail.replace(" points", f" {unit}"),
                 check.detectable, check.test)


def _check_paired(name_a: str, a: SeedStats, name_b: str, b: SeedStats, claimed: str) -> Check:
    """check_ranking of the seeds both methods have, with the first seed's per-image results."""
    paired_images = a.correct and b.correct and len(a.correct[0]) == len(b.correct[0])
    return check_ranking(name_a, name_b, a.values, b.values, claimed=claimed,
                         correct_a=a.correct[0] if paired_images else None,
                         correct_b=b.correct[0] if paired_images else None,
                         n_images=a.n_images if a.n_images == b.n_images else None,
                         **per_image_pair(a, b))


def check_against_every_network(name_a: str, a: SeedStats, name_b: str, b: SeedStats, **options) -> Check:
    """check_order where the two methods share one seed but one has more: the shared seed alone would
    ignore the other seeds' networks, and with a method whose seeds disagree (AutoMix's FGSM error: 76.96
    at seed 0, 65.68 at seed 1) a one-network comparison against seed 0 says nothing of the method. So
    every network of one is compared with every network of the other on the shared test images (a
    per-image test needs the same images, not the same seed): the claim is supported or contradicted
    only when every pair agrees, and is otherwise inconclusive."""
    pairs = [(sa, sb, check_order(name_a, a.network(sa), name_b, b.network(sb), **options))
             for sa in a.seeds for sb in b.seeds]
    outcomes = {check.outcome for _, _, check in pairs}
    outcome = outcomes.pop() if len(outcomes) == 1 else "inconclusive"
    detail = "every network against every network: " + "; ".join(
        f"seed {sa} vs seed {sb}: {check.outcome} ({check.detail})" for sa, sb, check in pairs)
    detectable = [check.detectable for _, _, check in pairs if check.detectable is not None]
    # decisive only when every pair's test agrees: no likelier by chance than one of them
    return Check(pairs[0][2].statement, outcome, detail, max(detectable) if detectable else None,
                 "every network pair" if any(check.test for _, _, check in pairs) else "")


def per_image_pair(a: SeedStats, b: SeedStats) -> dict:
    """check_ranking's images_a/images_b: the first seed's per-image statistics where both sides have them on
    the same number of images ({} otherwise)."""
    if a.images and b.images and a.images[0].n_images == b.images[0].n_images:
        return {"images_a": a.images[0], "images_b": b.images[0]}
    return {}


def check_close(name: str, ours: SeedStats, paper: float, *, k: float = K_SE,
                tolerance: float = DEFAULT_TOLERANCE) -> Check:
    """Our mean within max(k·SE, tolerance) of the paper's number."""
    gap = ours.mean - paper
    bound = max(k * ours.se, tolerance)
    outcome = "supports" if abs(gap) <= bound else "contradicts"
    return Check(f"{name} matches the paper", outcome,
                 f"ours {ours.mean:.2f} vs paper {paper:.2f}: gap {gap:+.2f} (bound {bound:.2f})")


def check_not_worse(name_a: str, a: SeedStats, name_b: str, b: SeedStats, *, higher_is_better: bool = True,
                    tolerance: float = 1.0, k: float = K_SE, quantity: str = "") -> Check:
    """'a is no worse than b' (e.g. "keeps a competitive FGSM error"): a trails b by at most max(k·SE, tolerance)."""
    shortfall = (b.mean - a.mean) if higher_is_better else (a.mean - b.mean)
    bound = max(k * math.hypot(a.se, b.se), tolerance)
    outcome = "supports" if shortfall <= bound else "contradicts"
    return Check(f"{name_a} {quantity}".strip() + f" no worse than {name_b}", outcome,
                 f"{name_a} {a.mean:.2f} vs {name_b} {b.mean:.2f}: shortfall {shortfall:+.2f} (bound {bound:.2f})")


def check_identity(statement: str, max_abs_difference: float, tolerance: float = 1e-10) -> Check:
    """A numerical identity: passes when the largest absolute difference is within ``tolerance``."""
    # Rounding residuals differ between machines; the detail names only which side of the
    # tolerance they fall, so the recorded verdict is the same everywhere.
    if max_abs_difference <= tolerance:
        return Check(statement, "supports", f"max |difference| <= {tolerance:.0e}")
    return Check(statement, "contradicts", f"max |difference| = {max_abs_difference:.3g} > {tolerance:.0e}")


def check_symbolic(statement: str, differences) -> Check:
    """Symbolic identities: passes when sympy simplifies every ``lhs - rhs`` to exactly 0."""
    import sympy

    residuals = [sympy.simplify(d) for d in differences]
    nonzero = [r for r in residuals if r != 0]
    detail = (f"all {len(residuals)} residuals simplify to 0" if not nonzero
              else f"{len(nonzero)} of {len(residuals)} residuals do not vanish, e.g. {nonzero[0]}")
    return Check(statement, "supports" if not nonzero else "contradicts", detail)


def decide_verdict(checks: Sequence[Check]) -> str:
    """The verdict of at least one check, by the rule of ``mixrepro.study.paired.decide``."""
    if not checks:
        raise InvalidParameterError("checks", checks, "at least one Check")
    return decide(checks)


def verdict_reason(checks: Sequence[Check]) -> str:
    """'2 of 3 checks support; 1 inconclusive (smallest detectable difference 1.1 points)'."""
    counts = {o: sum(c.outcome == o for c in checks) for o in ("supports", "contradicts", "inconclusive")}
    text = f"{counts['supports']} of {len(checks)} checks support"
    if counts["contradicts"]:
        text += f", {counts['contradicts']} contradict"
    if counts["inconclusive"]:
        detectable = [c.detectable for c in checks if c.outcome == "inconclusive" and c.detectable is not None]
        text += f", {counts['inconclusive']} inconclusive"
        if detectable:
            low, high = f"{min(detectable):.2g}", f"{max(detectable):.2g}"
            span = low if low == high else f"{low} to {high}"
            text += f" (smallest difference these runs could detect: {span} points)"
    return text


# What a ledger row is about: a claim of the papers, one of our own derivations of a paper's
# statement, or a finding of our audit of the protocol (the summary counts them apart).
CLAIM_KINDS = ("paper", "derivation", "audit")


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
    kind: str = "paper"  # one of CLAIM_KINDS
    paper_value: str = ""  # the paper's number(s) behind the claim, short (e.g. "97.08 vs 96.36")
    ours: str = ""  # ours, short (e.g. "80.1 +- 0.4 vs 79.6 +- 0.3, n = 3")
    run_hours: float = 0.0  # wall-clock hours of the training runs the verdict rests on
    runs: int = 0  # how many runs
    provisional: bool = False  # judged on the seeds run so far; the study's plan has more to run

    def to_dict(self) -> dict:
        d = asdict(self)
        d["checks"] = [asdict(c) for c in self.checks]
        return d


def judge(claim_id: str, claim: str, source: str, budget: str, checks: Sequence[Check] = (),
          untested_reason: str | None = None, needs_training: bool = True, *, kind: str = "paper",
          paper_value: str = "", ours: str = "", runs=None) -> Verdict:
    """Apply the module's verdict rule; ``untested_reason`` (data, model, method absent) wins.

    ``needs_training=False`` for claims decided without trained networks (identities
    of the losses), which every budget can test. ``kind`` (CLAIM_KINDS), ``paper_value`` and
    ``ours`` (short texts) and ``runs`` (the RunRecords the checks used: a list, or a dict of
    lists as collect_runs returns) feed the book's summary table and its compute column.
    """
    BUDGETS.get(budget)
    if kind not in CLAIM_KINDS:
        raise InvalidParameterError("kind", kind, f"one of {CLAIM_KINDS}")
    checks = tuple(checks)
    outcome = decide_verdict(checks) if checks else None
    extra = {"kind": kind, "paper_value": paper_value, "ours": ours, **run_compute(runs)}
    if untested_reason and provisional(untested_reason, checks, budget):
        reason = f"provisional, on the seeds run so far: {verdict_reason(checks)}. Still to come: {untested_reason}"
        return Verdict(claim_id, claim, source, outcome, reason, budget, checks, outcome, **extra, provisional=True)
    if untested_reason:
        return Verdict(claim_id, claim, source, "not tested here", untested_reason, budget, checks, outcome, **extra)
    if needs_training and budget not in EVIDENCE_BUDGETS:
        reason = (f"budget '{budget}' only shows that the pipeline runs; its numbers are not evidence. "
                  f"Rerun with budget 'cpu' or 'gpu' (the rule gives '{outcome}' on these numbers)"
                  + cpu_cost_text(runs))
        return Verdict(claim_id, claim, source, "not tested here", reason, budget, checks, outcome, **extra)
    if outcome is None:
        raise InvalidParameterError("checks", checks, "at least one Check, or an untested_reason")
    return Verdict(claim_id, claim, source, outcome, verdict_reason(checks), budget, checks, outcome, **extra)


def provisional(untested_reason: str, checks: Sequence[Check], budget: str) -> bool:
    """Whether a claim with runs still missing is judged now: only runs of the study's plan are
    missing (``collect.PendingRuns``), every method asked for has at least one seed, there are checks,
    and the budget's numbers are evidence."""
    from .collect import PendingRuns

    return (isinstance(untested_reason, PendingRuns) and not untested_reason.methods_without_runs
            and bool(checks) and budget in EVIDENCE_BUDGETS)


def verdict_word(verdict) -> str:
    """'**partly**', '**partly** (provisional)': the verdict as the tables show it (a Verdict or its dict)."""
    get = verdict.get if isinstance(verdict, dict) else lambda key, default=None: getattr(verdict, key, default)
    return f"**{get('verdict')}**" + (" (provisional)" if get("provisional", False) else "")


def _records(runs) -> list:
    if not runs:
        return []
    return [r for group in runs.values() for r in group] if isinstance(runs, dict) else list(runs)


def cpu_cost_text(runs) -> str:
    """'; at budget 'cpu' (3 seeds of the 2 settings these runs cover) about 4.7 hours of one CPU core'
    from the committed bench report, or '' when it cannot be priced. Settings outside the study plan
    (ablation arms) run one seed at cpu (``plans.cpu_seeds``)."""
    from .costs import cpu_hours, rerun_seeds, settings

    configs = [r.config for r in _records(runs)]
    hours = cpu_hours(configs) if configs else None
    if hours is None:
        return ""
    seeds = sorted({len(rerun_seeds(c)) for c in settings(configs).values()})
    n = len(settings(configs))
    counts = " or ".join(str(s) for s in seeds) + (" seed" if seeds == [1] else " seeds")
    return (f"; at budget 'cpu' ({counts} of the {n} setting{'s' if n > 1 else ''} these runs "
            f"cover) about {hours:.1f} hours of one CPU core, by the committed bench report")


def run_compute(runs) -> dict:
    """{'run_hours', 'runs'} of RunRecords (a list, or {method: [records]}); each run counted once."""
    records = _records(runs)
    if not records:
        return {"run_hours": 0.0, "runs": 0}
    unique = {r.config.key(): r for r in records}
    seconds = sum(float(r.summary.get("wall_time_s", 0.0)) for r in unique.values())
    return {"run_hours": round(seconds / 3600, 3), "runs": len(unique)}


def winner_checks(winner: str, stats: dict[str, SeedStats], table: PaperTable, *, higher_is_better: bool = True,
                  unit: str = "points", quantity: str = "") -> list[Check]:
    """'winner beats each other method we ran' as ordering checks."""
    if winner not in stats:
        return []
    return [check_order(table.label(winner), stats[winner], table.label(m), s, higher_is_better=higher_is_better,
                        unit=unit, quantity=quantity) for m, s in stats.items() if m != winner]


def winner_text(winner: str, stats: dict[str, SeedStats], table: PaperTable, *, higher_is_better: bool = True) -> str:
    """'AutoMix 80.89 (1 seed); best other: PuzzleMix 80.98 (1 seed)' for a summary row ('' without the winner)."""
    return _leader_text(winner, stats, table.label, lambda s: s.text(), lambda s: s.mean, higher_is_better)


def paper_winner_text(winner: str, table: PaperTable, column: str, *, higher_is_better: bool = True) -> str:
    """The same from the paper's column: 'AutoMix 97.34; best other: Co-Mixup 97.15' ('' if it lacks the winner)."""
    values = {m: table.value(m, column) for m in table.rows if table.value(m, column) is not None}
    return _leader_text(winner, values, table.label, lambda v: fmt(v, table.digits), float, higher_is_better)


def values_text(stats: dict[str, SeedStats], label, methods: Sequence[str] | None = None, digits: int = 2) -> str:
    """'Vanilla 91.93 ± 0.81 (n=2); MixUp 78.31 (1 seed)': our numbers for a claim about a few methods
    (``methods``, default all, those without runs left out; '' when none ran)."""
    return "; ".join(f"{label(m)} {stats[m].text(digits)}" for m in (methods or stats) if m in stats)


def versus_text(new: dict[str, SeedStats], base: dict[str, SeedStats], label, methods: Sequence[str],
                digits: int = 2) -> str:
    """'Mixup 80.25 vs 80.89 (n=1)' per method with both (``new`` then ``base``): a claim that one variant of each
    method beats another (DM(CE) vs MCE). Means over the seeds both have, as the paired checks compare them."""
    texts = []
    for m in methods:
        if m in new and m in base and new[m].shares_seeds(base[m]):
            ours, theirs = new[m].paired_with(base[m])
            texts.append(f"{label(m)} {ours.mean:.{digits}f} vs {theirs.mean:.{digits}f} (n={ours.n})")
    return "; ".join(texts)


def paper_values_text(table: PaperTable, rows: Sequence[str], column: str) -> str:
    """'AMix (SAMix) 82.20 vs AutoMix 82.04 (CIFAR-100 R-18)'."""
    return " vs ".join(f"{table.label(m)} {fmt(table.value(m, column))}" for m in rows) + \
        f" ({table.columns[column]['label']})"


def paper_versus_text(table: PaperTable, rows: Sequence[str], column: str, base_column: str) -> str:
    """'MixUp 79.70 vs 79.34; CutMix 79.77 vs 79.58 (CIFAR-100 acc DM(CE) vs CIFAR-100 acc MCE)': each row's
    ``column`` against its ``base_column`` (rows lacking either left out; '' when none has both)."""
    pairs = [(m, table.value(m, column), table.value(m, base_column)) for m in rows]
    shown = [f"{table.label(m)} {fmt(new)} vs {fmt(base)}" for m, new, base in pairs
             if new is not None and base is not None]
    labels = f"{table.columns[column]['label']} vs {table.columns[base_column]['label']}"
    return f"{'; '.join(shown)} ({labels})" if shown else ""


def smallest_gain_text(baseline: str, stats: dict[str, SeedStats], table: PaperTable) -> str:
    """'smallest gain over Vanilla: MixUp +0.92 (1 seed)': each method's mean gain on the seeds it shares
    with ``baseline`` (as the paired checks compare them), the smallest shown ('' without the baseline)."""
    if baseline not in stats:
        return ""
    gains = {}
    for method, method_stats in stats.items():
        if method != baseline and method_stats.shares_seeds(stats[baseline]):
            ours, base = method_stats.paired_with(stats[baseline])
            gains[method] = (ours.mean - base.mean, ours.n)
    if not gains:
        return ""
    method = min(gains, key=lambda m: gains[m][0])
    gain, seeds = gains[method]
    seeds_text = f"{seeds} seed{'s' * (seeds > 1)}"
    return f"smallest gain over {table.label(baseline)}: {table.label(method)} {gain:+.2f} ({seeds_text})"


def paper_smallest_gain_text(baseline: str, table: PaperTable, column: str, methods=None) -> str:
    """The same from the paper's column, over ``methods`` (default: every row with a number)."""
    values = {m: table.value(m, column) for m in (methods or table.rows) if table.value(m, column) is not None}
    if baseline not in values or len(values) < 2:
        return ""
    method = min((m for m in values if m != baseline), key=lambda m: values[m])
    return (f"smallest gain over {table.label(baseline)}: {table.label(method)} "
            f"{values[method] - values[baseline]:+.{table.digits}f}")


def leader_text(winner: str, stats: dict[str, SeedStats], label, *, higher_is_better: bool = True,
                suffix: str = "") -> str:
    """'AdAutoMix 81.25 (1 seed); best other: PuzzleMix 81.15 (1 seed)' from seed stats ('' without the
    winner): the two numbers a ranking claim turns on, for a summary row (``label``: method -> name)."""
    return _leader_text(winner, stats, label, lambda s: s.text() + suffix, lambda s: s.mean, higher_is_better)


def _leader_text(winner: str, values: dict, label, show, score, higher_is_better: bool) -> str:
    if winner not in values:
        return ""
    others = {m: v for m, v in values.items() if m != winner}
    text = f"{label(winner)} {show(values[winner])}"
    if not others:
        return text
    best = (max if higher_is_better else min)(others, key=lambda m: score(others[m]))
    return f"{text}; best other: {label(best)} {show(others[best])}"


def closeness_checks(table: PaperTable, column: str, stats: dict[str, SeedStats], runs: dict,
                     tolerance: float = DEFAULT_TOLERANCE) -> tuple[list[Check], str | None]:
    """check_close for each method with a paper number, or a reason why our protocol is not comparable."""
    spec = table.columns[column]
    if not runs:
        return [], "no runs of ours to compare yet"
    config = next(iter(runs.values()))[0].config
    if not comparable_to_paper(config, spec):
        paper = {"width": 1.0, "train_subset": None, "test_subset": None, "epochs": spec["epochs"],
                 "model": spec["model"]}
        changed = ", ".join(f"{k} {fmt(getattr(config, k), none='all')} (paper {fmt(v, none='all')})"
                            for k, v in paper.items() if getattr(config, k) != v)
        return [], f"absolute numbers need the paper's protocol; our runs differ in: {changed}"
    checks = [check_close(table.label(m), s, table.value(m, column), tolerance=tolerance)
              for m, s in stats.items() if table.value(m, column) is not None]
    return checks, None


def checks_markdown(verdict: Verdict) -> str:
    rows = [[c.statement, c.outcome, c.detail] for c in verdict.checks]
    return markdown_table(["check", "outcome", "numbers"], rows) if rows else "(no checks: nothing to compare)"


def all_checks_markdown(verdicts: Sequence[Verdict]) -> str:
    """Every check of every claim, one row each."""
    rows = [[v.claim_id, c.statement, c.outcome, c.detail] for v in verdicts for c in v.checks]
    return markdown_table(["claim", "check", "outcome", "numbers"], rows) if rows else "(no checks were made)"


def verdicts_markdown(verdicts: Sequence[Verdict]) -> str:
    rows = [[v.claim_id, v.claim, verdict_word(v), v.reason] for v in verdicts]
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
        glue(f"verdict_{v.claim_id}", Markdown(verdict_word(v)))
    glue_verdict_tables(verdicts)


def glue_verdict_tables(verdicts: Sequence[Verdict], section: str = "") -> None:
    """Glue the verdicts' table and their checks' table as ``verdicts_table`` and ``checks_table``, or
    ``<section>_verdicts_table`` and ``<section>_checks_table`` for a page that shows its verdicts
    in the sections they belong to."""
    from IPython.display import Markdown

    prefix = f"{section}_" if section else ""
    glue(f"{prefix}verdicts_table", Markdown(verdicts_markdown(verdicts)))
    glue(f"{prefix}checks_table", Markdown(all_checks_markdown(verdicts)))


def read_verdicts(notebook_path) -> list[dict]:
    """The verdicts a notebook recorded in its outputs (empty when it has none)."""
    nb = json.loads(Path(notebook_path).read_text())
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get(VERDICTS_OUTPUT_KEY):
                found.extend(out["data"]["application/json"]["verdicts"])
    return found
