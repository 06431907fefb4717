"""The study's pooled seed spread (mixrepro.study.pooled) against textbook statistics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mixrepro.errors import InvalidParameterError
from mixrepro.results import ResultsStore
from mixrepro.study.paired import detectable_noncentrality, minimal_detectable_difference
from mixrepro.study.pooled import (
    MIN_POOLED_DOF,
    PoolMember,
    arm_of,
    check_pooled,
    pool_seed_variance,
    study_pool,
)
from mixrepro.study.scores import SeedStats, run_top1, scored_stats
from mixrepro.study.verdicts import check_order

RESULTS = Path(__file__).resolve().parent.parent / "notebooks" / "results"


def seeded(*values):
    return dict(enumerate(values))


def test_balanced_pool_is_the_two_way_anova_error_term():
    rng = np.random.default_rng(0)
    table = np.array([80.0, 79.2, 81.0, 78.3])[:, None] + np.array([0.0, 0.5, 0.2]) + rng.normal(0, 0.3, (4, 3))
    pool = pool_seed_variance({f"arm{i}": seeded(*row) for i, row in enumerate(table)}, "top-1")
    assert pool.left_out == ()
    # Textbook two-way layout without interaction: residual y_ij - row mean - column mean + grand mean.
    residual = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    assert pool.dof == dof == 6
    assert pool.variance == pytest.approx((residual ** 2).sum() / dof)
    difference, se = pool.contrast("arm0", "arm1")
    assert difference == pytest.approx(table[0].mean() - table[1].mean())
    assert se == pytest.approx(np.sqrt(pool.variance * 2 / 3))
    assert dict(pool.seed_effects)[2] == pytest.approx(table[:, 2].mean() - table[:, 0].mean())


def test_seed_effects_are_removed_from_unbalanced_comparisons():
    # Seed 1 is 1.5 points harder for every arm (e.g. a seeded evaluation set); arm "late" has seed 1 only.
    base = {"a": 80.0, "b": 79.0, "c": 81.0, "late": 80.0}
    noise = {("a", 0): 0.1, ("a", 1): -0.1, ("b", 0): -0.2, ("b", 1): 0.2, ("c", 0): 0.0, ("c", 1): 0.05}
    values = {arm: {seed: base[arm] - 1.5 * seed + noise.get((arm, seed), 0.0) for seed in (0, 1)}
              for arm in ("a", "b", "c")}
    values["late"] = {1: base["late"] - 1.5}
    values["d"], values["e"] = {0: 78.0, 1: 76.6}, {0: 82.0, 1: 80.4}
    pool = pool_seed_variance(values, "mixed-sample top-1")
    assert pool.contrast("a", "late")[0] == pytest.approx(0.0, abs=0.1)  # raw means differ by 1.5
    assert pool.sd < 0.3 and pool.dof == 4


def test_two_arm_pool_is_the_paired_t_test():
    # Two arms on the same seeds: the additive model's contrast is the paired t test over seeds.
    a, b = [80.1, 80.9, 80.4, 80.6], [79.2, 79.9, 79.8, 79.3]
    pool = pool_seed_variance({"a": seeded(*a), "b": seeded(*b)}, "top-1")
    difference, se = pool.contrast("a", "b")
    reference = stats.ttest_rel(a, b)
    assert pool.dof == reference.df == 3
    assert difference / se == pytest.approx(reference.statistic)


def test_claim_direction_decides_supports_or_contradicts():
    values = {"a": seeded(80.1, 80.9, 80.4), "b": seeded(78.2, 78.9, 78.6), "c": seeded(80.6, 80.3, 80.2),
              "d": seeded(79.0, 79.4, 79.6)}
    pool = pool_seed_variance(values, "top-1")
    assert check_pooled("A", "a", "B", "b", pool, claimed="a>b").outcome == "supports"
    assert check_pooled("A", "a", "B", "b", pool, claimed="b>a").outcome == "contradicts"
    close = check_pooled("A", "a", "C", "c", pool)
    assert close.outcome == "inconclusive" and "smallest detectable" in close.detail


def test_decision_and_smallest_detectable_follow_the_t_interval():
    values = {m: seeded(80.0 + d, 80.3 + d, 80.1 + d + e) for m, d, e in
              zip("abcdefg", (0.0, 0.4, -0.2, 0.3, 0.1, 0.0, 0.9), (0.1, -0.2, 0.0, 0.3, -0.1, 0.2, 0.0))}
    pool = pool_seed_variance(values, "top-1")
    difference, se = pool.contrast("g", "a")
    check = check_pooled("G", "g", "A", "a", pool)
    low = difference - stats.t.ppf(0.975, pool.dof) * se
    assert (check.outcome == "supports") == (low > 0)
    assert check.detectable == pytest.approx(detectable_noncentrality(pool.dof) * se)
    # The same noncentrality serves the paired rule: n pairs, n - 1 degrees of freedom.
    assert minimal_detectable_difference(0.5, 4) == pytest.approx(detectable_noncentrality(3) * 0.5 / 2)


def test_an_arm_that_spreads_far_more_is_left_out_and_others_are_not():
    groups = {m: seeded(80.0 + d, 80.3 + d + e) for m, d, e in
              zip("abcdef", (0.0, 0.1, -0.2, 0.3, 0.1, 0.0), (0.0, 0.1, -0.1, 0.2, -0.2, 0.05))}
    groups["wild"] = seeded(77.0, 65.7)
    pool = pool_seed_variance(groups, "FGSM error")
    assert [arm for arm, _ in pool.left_out] == ["wild"]
    assert pool.covers("a") and not pool.covers("wild")
    # A spread a little above the rest, by chance at one degree of freedom each, stays in the pool.
    groups["wild"] = seeded(80.0, 80.9)
    assert pool_seed_variance(groups, "FGSM error").left_out == ()


def test_a_pool_too_small_is_not_usable_and_refuses_to_check():
    pool = pool_seed_variance({"a": seeded(1.0, 2.0), "b": seeded(1.5, 2.7), "c": seeded(3.0, 3.5)}, "x")
    assert pool.dof == 2 < MIN_POOLED_DOF and not pool.usable and not pool.covers("a")
    with pytest.raises(InvalidParameterError):
        check_pooled("A", "a", "B", "b", pool)


def members(values: dict):
    pool = pool_seed_variance(values, "top-1")
    return pool, {arm: PoolMember(pool, arm) for arm in values}


def stats_of(values: dict, arm: str, member=None) -> SeedStats:
    seeds = tuple(sorted(values[arm]))
    return SeedStats(tuple(values[arm][s] for s in seeds), seeds=seeds, pooled=member)


def test_check_order_uses_the_pool_only_when_both_carry_it():
    values = {m: seeded(80.0 + d, 80.4 + d + e) for m, d, e in
              zip("abcdef", (0.6, 0.0, -0.2, 0.3, 0.1, 0.0), (-0.1, 0.1, -0.1, 0.1, -0.1, 0.1))}
    pool, member = members(values)
    a, b = stats_of(values, "a", member["a"]), stats_of(values, "b", member["b"])
    pooled = check_order("A", a, "B", b)
    assert pooled.outcome == "supports" and "pooled over 6 arms" in pooled.detail
    # Without the pool on one side (an arm left out of it), the paired rule over two seeds cannot tell.
    unpooled = check_order("A", a, "B", stats_of(values, "b"))
    assert unpooled.outcome == "inconclusive" and "paired seeds" in unpooled.detail


def test_one_seed_methods_take_the_pools_spread():
    values = {m: seeded(80.0 + d, 80.3 + d + e, 80.2 + d - e) for m, d, e in
              zip("bcdef", (0.0, 0.4, -0.2, 0.3, 0.1), (0.1, -0.2, 0.0, 0.3, -0.1))}
    values["a"] = {0: 81.5}
    pool, member = members(values)
    check = check_order("A", stats_of(values, "a", member["a"]), "B", stats_of(values, "b", member["b"]))
    difference, se = pool.contrast("a", "b")
    assert se >= pool.sd * np.sqrt(1 + 1 / 3)  # plus the uncertainty of the fitted seed effects
    low = difference - stats.t.ppf(0.975, pool.dof) * se
    assert check.outcome == ("supports" if low > 0 else "inconclusive")
    assert "means over 1 and 3 seeds" in check.detail


def test_study_pool_only_for_the_study_plans_runs():
    from dataclasses import replace

    from mixrepro.plans import study_plan

    store = ResultsStore(RESULTS)
    vanilla = [store.load(c) for c in study_plan().configs if c.method == "vanilla"]
    vanilla = [r for r in vanilla if r is not None and "fgsm" in r.evaluations.get("online", {})]
    if len(vanilla) < 2:
        pytest.skip("the committed store has fewer than two evaluated Vanilla seeds at the cpu budget")
    pool = study_pool(vanilla, "top-1 online", lambda r: run_top1(r, "online"))
    assert pool is not None and pool.usable and arm_of(vanilla[0]) == "Vanilla"
    assert pool.dof >= len(vanilla) - 1 and "Vanilla" in pool.arms + tuple(a for a, _ in pool.left_out)
    # The page-level helper attaches the pool of the scored network's top-1 where it covers the arm.
    attached = scored_stats({"vanilla": vanilla})["vanilla"].pooled
    assert attached is None or (attached.pool.covers("Vanilla") and attached.arm == "Vanilla"
                                and attached.pool.metric == "top-1 of the scored network")
    # A run outside the plan (another epoch count) means no pool: the per-pair rule applies.
    outside = replace(vanilla[0], config=vanilla[0].config.replace(epochs=2))
    assert study_pool([outside], "top-1 online", lambda r: run_top1(r, "online")) is None


@pytest.mark.parametrize("seeds", [2, 3])
def test_homogeneous_arms_are_rarely_left_out(seeds):
    # The F tests share a 5 % family-wise level: on arms whose seeds truly spread alike (with a seed effect
    # and some arms still at one seed, as mid-sweep), at most about one pool in twenty loses an arm.
    rng = np.random.default_rng(1)
    trials, lost = 300, 0
    for _ in range(trials):
        effects = rng.normal(0, 0.5, seeds)
        values = {f"arm{i}": {s: 80 + rng.normal(0, 1) + effects[s] + rng.normal(0, 0.4) for s in range(seeds)}
                  for i in range(8)}
        values.update({f"one{i}": {0: 80 + rng.normal(0, 0.4)} for i in range(4)})
        lost += bool(pool_seed_variance(values, "top-1").left_out)
    assert lost / trials < 0.09


def test_equal_methods_are_told_apart_about_one_time_in_twenty():
    # The interval's coverage, mid-sweep: arms at 1-3 seeds, a seed effect, one arm far noisier (left out).
    rng = np.random.default_rng(2)
    trials, decided, compared = 400, 0, 0
    for _ in range(trials):
        effects = rng.normal(0, 0.5, 3)
        values = {f"arm{i}": {s: 80 + effects[s] + rng.normal(0, 0.4) for s in range(1 + i % 3)} for i in range(9)}
        values["wild"] = {s: 80 + effects[s] + rng.normal(0, 6) for s in range(3)}
        pool = pool_seed_variance(values, "top-1")
        if pool.covers("arm1") and pool.covers("arm5"):
            compared += 1
            decided += check_pooled("A", "arm1", "B", "arm5", pool).outcome != "inconclusive"
    assert compared > 0.9 * trials and 0.02 < decided / compared < 0.09
