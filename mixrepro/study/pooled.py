"""One seed-to-seed spread for every method: the study's arms pooled, so two or three seeds can decide.

A paired t interval over two seeds has one degree of freedom (its 95 % critical value is 12.7), so
a comparison of two methods with two or three seeds each detects only differences of several
points, far larger than the gaps the papers' claims are about. Yet every arm of the study is
trained by the same loop on the same data at the same budget, and its seeds spread alike. So each
metric is modelled over all the study's runs as

    value(arm, seed) = arm effect + seed effect + noise,

fitted by least squares (a two-way analysis of variance without interaction). The seed effect is
what a seed does to every arm alike: its data order and initialisation, and, for the mixed-sample
evaluation, the seeded mixes themselves (seed 1's are about a point harder than seed 0's for every
method). Taking it off keeps a comparison fair when one method has a seed the other lacks. The
residual variance estimates the seed-to-seed noise with as many degrees of freedom as the runs
exceed the effects; a difference of two arms' effects gets its standard error from it
(``s · sqrt(2/n)`` for two arms of n seeds each, the same seeds) and a t interval on those
degrees of freedom. With two arms only, this is the paired t test over seeds.

Where the assumption fails. An arm whose seeds spread more than the others' (AutoMix's FGSM error:
76.96 at seed 0, 65.68 at seed 1, when its Mix Block collapsed) would get too small a standard
error from the pool. So each arm with two or more seeds is tested against the model fitted to the
other arms (one-sided F test of its variance; 5 % for all arms together, Bonferroni); such an arm is
left out and its comparisons keep the per-pair rule of ``verdicts.check_order``. A spread
*smaller* than the pool's costs nothing but power and is kept. An arm with one seed has no spread
of its own and takes the pool's.

The pool is made per metric (top-1 of the scored network, an evaluation number of a named
network) over the arms of the study plan at the cpu budget (``mixrepro.plans.study_plan``), for the
methods of a page whose runs are all in that plan, and for the study's equal-compute arms; at the
smoke budget, or for a page's ablation arm, the per-pair rule applies.
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from ..errors import InvalidParameterError, MixreproError
from .paired import CONFIDENCE, Check, _two_significant, detectable_noncentrality

SPREAD_TEST_LEVEL = 0.05  # family-wise level of the F tests that leave an arm with a larger spread out
MIN_POOLED_DOF = 4  # below this the pool is no better than a pair's own seeds: per-pair rule


@dataclass(frozen=True)
class SeedPool:
    """One metric over the study's arms: value = arm effect + seed effect + noise, fitted by least squares.

    ``variance`` is the residual variance on ``dof`` degrees of freedom; ``estimates`` the arms' seed-adjusted
    means and ``unscaled`` the arms' block of (XᵀX)⁺, so a contrast of two arms has variance
    ``variance · (e_a - e_b)ᵀ unscaled (e_a - e_b)``."""

    metric: str
    variance: float
    dof: int
    arms: tuple[str, ...]  # arms in the model (a one-seed arm adds a mean, no degree of freedom)
    seeds_per_arm: tuple[int, ...]
    estimates: tuple[float, ...]
    unscaled: tuple[tuple[float, ...], ...]
    seed_effects: tuple[tuple[int, float], ...] = ()  # (seed, effect relative to the first seed)
    seed_unscaled: tuple[tuple[float, ...], ...] = ()  # the seed effects' block of (XᵀX)⁺
    left_out: tuple[tuple[str, float], ...] = ()  # (arm, p of its F test) of arms that spread more

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)

    @property
    def usable(self) -> bool:
        return self.dof >= MIN_POOLED_DOF

    def covers(self, arm: str) -> bool:
        """Whether the pool's spread applies to this arm (in the model, not left out for spreading more)."""
        return self.usable and arm in self.arms

    def contrast(self, arm_a: str, arm_b: str) -> tuple[float, float]:
        """(seed-adjusted mean of a - that of b, its standard error)."""
        i, j = self.arms.index(arm_a), self.arms.index(arm_b)
        u = self.unscaled
        return self.estimates[i] - self.estimates[j], self.sd * math.sqrt(max(u[i][i] + u[j][j] - 2 * u[i][j], 0.0))

    def text(self) -> str:
        spread = sum(1 for n in self.seeds_per_arm if n > 1)
        text = f"seed sd pooled over {spread} arms with 2+ seeds, seed effects removed: {self.sd:.2f} on {self.dof} df"
        if self.left_out:
            text += "; left out for a larger spread: " + ", ".join(f"{arm} (F test p = {p:.2g})"
                                                                    for arm, p in self.left_out)
        return text


@dataclass(frozen=True)
class PoolMember:
    """What a method's SeedStats carries: the pool of its metric and the arm it is in that pool."""

    pool: SeedPool
    arm: str


def pool_seed_variance(values_by_arm: Mapping[str, Mapping[int, float]], metric: str) -> SeedPool:
    """The pool of the arms' per-seed values ({arm: {seed: value}}). Arms that spread more than the rest (on
    seed-adjusted values) are left out, one at a time, the most significant first, until none does. With
    one degree of freedom per arm a sample variance is often far from the truth, so the tests share one
    5 % level (Bonferroni): leaving an arm out by chance would shrink the pool for the others."""
    arms = {arm: {int(seed): float(v) for seed, v in values.items()} for arm, values in values_by_arm.items()
            if values}
    for arm, values in arms.items():
        if not all(math.isfinite(v) for v in values.values()):
            raise InvalidParameterError(f"values of {arm}", values, "finite numbers")
    left_out: list[tuple[str, float]] = []
    while True:
        tests = {arm: _larger_spread_p(arm, arms) for arm, values in arms.items() if len(values) > 1}
        level = SPREAD_TEST_LEVEL / max(len(tests), 1)
        tests = {arm: p for arm, p in tests.items() if p is not None and p < level}
        if not tests:
            break
        worst = min(tests, key=tests.get)
        left_out.append((worst, tests[worst]))
        del arms[worst]
    return replace(_fit(arms, metric), left_out=tuple(left_out))


def _design(arms: dict[str, dict[int, float]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(X, y, seeds): one row per run, one column per arm, one per seed after the first."""
    seeds = sorted({seed for values in arms.values() for seed in values})
    rows, y = [], []
    for i, values in enumerate(arms.values()):
        for seed, value in sorted(values.items()):
            row = np.zeros(len(arms) + len(seeds) - 1)
            row[i] = 1.0
            if seed != seeds[0]:
                row[len(arms) + seeds.index(seed) - 1] = 1.0
            rows.append(row)
            y.append(value)
    return np.array(rows).reshape(len(y), len(arms) + len(seeds) - 1), np.array(y), seeds


def _fit(arms: dict[str, dict[int, float]], metric: str) -> SeedPool:
    names = tuple(arms)
    if not names:
        return SeedPool(metric, 0.0, 0, (), (), (), ())
    x, y, seeds = _design(arms)
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    dof = int(len(y) - np.linalg.matrix_rank(x))
    unscaled = np.linalg.pinv(x.T @ x)
    k = len(names)
    return SeedPool(metric, float(residual @ residual / dof) if dof else 0.0, dof, names,
                    tuple(len(arms[a]) for a in names), tuple(float(c) for c in coefficients[:k]),
                    _as_tuples(unscaled[:k, :k]), tuple((s, float(c)) for s, c in zip(seeds[1:], coefficients[k:])),
                    _as_tuples(unscaled[k:, k:]))


def _as_tuples(matrix: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in matrix)


def _larger_spread_p(arm: str, arms: dict[str, dict[int, float]]) -> float | None:
    """P(F >= s²/(k·s²_rest)) for one arm against the model fitted to the other arms: s² the arm's variance
    after the others' seed effects are taken off its values (an arm that spreads far would otherwise pass
    its spread on to the seed effects), s²_rest the others' residual variance, k the factor by which the
    seed effects' own error inflates s² on average; None where the others have fewer than two degrees of
    freedom or no spread."""
    rest = _fit({other: values for other, values in arms.items() if other != arm}, "")
    if rest.dof < 2 or rest.variance == 0.0:
        return None
    effects = dict(rest.seed_effects)
    seeds = sorted(arms[arm])
    adjusted = [arms[arm][seed] - effects.get(seed, 0.0) for seed in seeds]
    n = len(adjusted)
    # Cov(adjusted) = σ² (I + V), V the error covariance of the subtracted seed effects (the first seed's is 0).
    fitted = [seed for seed, _ in rest.seed_effects]
    index = [fitted.index(seed) if seed in fitted else None for seed in seeds]
    v = np.array([[rest.seed_unscaled[i][j] if i is not None and j is not None else 0.0 for j in index]
                  for i in index])
    centre = np.eye(n) - 1.0 / n
    inflation = 1.0 + float(np.trace(centre @ v)) / (n - 1)
    return float(stats.f.sf(statistics.variance(adjusted) / (inflation * rest.variance), n - 1, rest.dof))


def check_pooled(name_a: str, arm_a: str, name_b: str, arm_b: str, pool: SeedPool, *, claimed: str = "a>b",
                 confidence: float = CONFIDENCE) -> Check:
    """'a beats b' (or b beats a) from the two arms' seed-adjusted means with the pool's spread: the t
    interval of the difference decides as in ``paired.check_ranking``; inconclusive prints the smallest
    difference the pool could have detected at 80 % power."""
    for arm in (arm_a, arm_b):
        if not pool.covers(arm):
            raise InvalidParameterError("arm", arm, f"an arm the pool covers ({pool.text()}; arms {pool.arms})")
    difference, se = pool.contrast(arm_a, arm_b)
    half = float(stats.t.ppf((1 + confidence) / 2, pool.dof)) * se
    low, high = difference - half, difference + half
    sign = 1.0 if claimed == "a>b" else -1.0
    low_claimed, high_claimed = sorted((sign * low, sign * high))
    outcome = "supports" if low_claimed > 0 else "contradicts" if high_claimed < 0 else "inconclusive"
    detectable = detectable_noncentrality(pool.dof, alpha=1 - confidence) * se
    counts = dict(zip(pool.arms, pool.seeds_per_arm))
    detail = (f"{name_a} - {name_b} = {difference:+.2f} points (seed-adjusted means over {counts[arm_a]} and "
              f"{counts[arm_b]} seeds; {pool.text()}), {100 * confidence:g}% CI [{low:.2f}, {high:.2f}]; "
              f"smallest detectable {_two_significant(detectable)} points")
    statement = f"{name_a} > {name_b}" if claimed == "a>b" else f"{name_b} > {name_a}"
    return Check(statement, outcome, detail, detectable, test="pooled t")


# --------------------------------------------------------------------------- the study's pools


def study_pool(records: Sequence, metric: str, value_of: Callable) -> SeedPool | None:
    """The pool of ``metric`` (``value_of(record)``) over the study plan's arms, when every one of
    ``records`` (a page's runs) is a run of that plan; None otherwise (the per-pair rule applies)."""
    from ..plans import in_study_plan

    if not records or not all(in_study_plan(r.config) for r in records):
        return None
    return usable_pool_beside(records[0], metric, value_of)


def usable_pool_beside(record, metric: str, value_of: Callable) -> SeedPool | None:
    """The pool of ``metric`` over the study's arms in the store that holds ``record``, where it is usable;
    None for a run that is not stored, a number the study's evaluations do not store, or too few df."""
    if getattr(record, "run_dir", None) is None:
        return None
    try:
        pool = pool_over_study(results_root_of(record), metric, value_of)
    except MixreproError:  # a number the study's evaluations do not store: no pool for it
        return None
    return pool if pool.usable else None


def results_root_of(record) -> Path:
    """The results store a stored run is in (``ResultsStore``: root / dataset / method / key)."""
    return Path(record.run_dir).parents[2]


def pool_over_study(root, metric: str, value_of: Callable) -> SeedPool:
    """The pool of ``metric`` (``value_of(record)``) over the study's arms stored under ``root``."""
    arms = _study_arm_records(Path(root).resolve())
    return pool_seed_variance({arm: {int(r.config.seed): float(value_of(r)) for r in records}
                               for arm, records in arms.items()}, metric)


@functools.lru_cache(maxsize=4)
def _study_arm_records(root: Path) -> dict[str, list]:
    """{arm label: its evaluated runs} of the study plan's arms stored under ``root``: the main table's
    three-seed settings give the spread; the equal-compute and audit arms, one seed by design, add an
    estimate each (and no degree of freedom), so they can be compared by the same pool."""
    from ..plans import study_plan
    from .overview import plan_arms

    return {arm.label: arm.records for arm in plan_arms(study_plan(), root) if arm.records}


def arm_of(record) -> str:
    """The study arm a run belongs to, labelled as the pool and the study overview label it."""
    from ..config import BUDGETS
    from .overview import arm_label

    return arm_label(record.config, BUDGETS.get("cpu").overrides["epochs"])
