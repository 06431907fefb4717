"""mixrepro.study.paired: the statistics behind the study's verdicts (fast, numpy/scipy only)."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from mixrepro.errors import InvalidParameterError
from mixrepro.study import paired
from mixrepro.study.scores import SeedStats
from mixrepro.study.paired import (
    VERDICTS,
    Check,
    bootstrap_difference,
    check_ranking,
    decide,
    mcnemar,
    minimal_detectable_difference,
    minimal_detectable_difference_images,
    paired_seed_difference,
)


def _correctness(only_a: int, only_b: int, both: int, neither: int):
    a = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * neither)
    b = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * neither)
    return a, b


def _random_correctness(n, p_a=0.8, p_b=0.75, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(n) < p_a, rng.random(n) < p_b


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_hand_computed_example():
    # 8 images only a gets right, 2 only b; 100 images. Two-sided exact p = 2 * P(X <= 2 | 10, 1/2).
    a, b = _correctness(8, 2, 60, 30)
    r = mcnemar(a, b)
    assert (r.n_images, r.only_a, r.only_b) == (100, 8, 2)
    assert r.difference_points == pytest.approx(6.0)
    assert r.p_value == pytest.approx(2 * (1 + 10 + 45) / 1024)


@pytest.mark.parametrize("seed", range(5))
def test_mcnemar_matches_scipy_binomtest(seed):
    a, b = _random_correctness(500, seed=seed)
    r = mcnemar(a, b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (r.only_a, r.only_b) == (only_a, only_b)
    assert r.p_value == pytest.approx(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
    assert r.difference_points == pytest.approx(100 * (a.mean() - b.mean()))


def test_mcnemar_without_discordant_pairs_has_p_one():
    a, b = _correctness(0, 0, 70, 30)
    r = mcnemar(a, b)
    assert (r.only_a, r.only_b, r.difference_points, r.p_value) == (0, 0, 0.0, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_mcnemar_is_symmetric(seed):
    a, b = _random_correctness(300, 0.7, 0.65, seed=seed)
    ab, ba = mcnemar(a, b), mcnemar(b, a)
    assert ab.difference_points == pytest.approx(-ba.difference_points)
    assert (ab.only_a, ab.only_b) == (ba.only_b, ba.only_a)
    assert ab.p_value == pytest.approx(ba.p_value)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_observed_difference_and_is_reproducible():
    a, b = _random_correctness(1000, seed=1)
    observed = 100 * (a.mean() - b.mean())
    low, high = bootstrap_difference(a, b, seed=3)
    assert low < observed < high
    assert bootstrap_difference(a, b, seed=3) == (low, high)


def test_bootstrap_narrows_with_more_images():
    a, b = _random_correctness(500, seed=2)
    low, high = bootstrap_difference(a, b)
    big_low, big_high = bootstrap_difference(np.tile(a, 10), np.tile(b, 10))
    # Same proportions, ten times the images: width shrinks by about sqrt(10).
    assert (big_high - big_low) < 0.5 * (high - low)
    assert (big_high - big_low) > 0.2 * (high - low)


def test_bootstrap_matches_resampling_image_indices():
    # The multinomial shortcut must give the interval that resampling image indices gives.
    a, b = _random_correctness(800, seed=4)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, a.size, size=(4000, a.size))
    naive = 100 * (a[idx].mean(axis=1) - b[idx].mean(axis=1))
    naive_low, naive_high = np.percentile(naive, [2.5, 97.5])
    low, high = bootstrap_difference(a, b, n_resamples=4000)
    assert low == pytest.approx(naive_low, abs=0.4)
    assert high == pytest.approx(naive_high, abs=0.4)


def test_bootstrap_interval_is_paired_not_independent():
    # Networks that agree on almost every image: the paired interval is far narrower
    # than the one treating the two accuracies as independent samples.
    a, b = _correctness(30, 10, 7000, 2960)
    low, high = bootstrap_difference(a, b)
    independent_se = 100 * math.sqrt(2 * a.mean() * (1 - a.mean()) / a.size)
    assert (high - low) < 0.5 * 2 * 1.96 * independent_se
    assert low > 0  # +0.2 points, clearly detectable when pairing is used


# --------------------------------------------------------------------------- paired seeds


def test_paired_seed_difference_values():
    r = paired_seed_difference([95.0, 95.4, 94.8], [94.5, 94.6, 94.5])
    d = np.array([0.5, 0.8, 0.3])
    assert r.n == 3
    assert r.mean_difference == pytest.approx(d.mean())
    assert r.sd_difference == pytest.approx(d.std(ddof=1))
    assert r.se == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    half = stats.t.ppf(0.975, 2) * r.se
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_paired_seed_difference_agrees_with_ttest_rel():
    rng = np.random.default_rng(0)
    outcomes = set()
    for trial in range(200):
        n = int(rng.integers(2, 7))
        b = 94 + rng.normal(0, 0.5, n)
        a = b + rng.normal(rng.uniform(-1, 1), rng.uniform(0.05, 0.8), n)
        r = paired_seed_difference(a, b)
        test = stats.ttest_rel(a, b)
        assert r.mean_difference / r.se == pytest.approx(test.statistic)
        excludes_zero = r.ci_low > 0 or r.ci_high < 0
        assert excludes_zero == (test.pvalue < 0.05), (trial, a, b)
        outcomes.add(excludes_zero)
    assert outcomes == {True, False}  # both branches exercised


def test_paired_seed_difference_single_seed_has_no_spread():
    r = paired_seed_difference([95.1], [94.6])
    assert r.n == 1 and r.mean_difference == pytest.approx(0.5)
    assert (r.sd_difference, r.se, r.ci_low, r.ci_high) == (None, None, None, None)


# --------------------------------------------------------------------------- minimal detectable differences


def _simulated_paired_t_power(true_difference, sd, n, trials, seed, alpha=0.05):
    d = np.random.default_rng(seed).normal(true_difference, sd, size=(trials, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)))


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_minimal_detectable_difference_has_the_stated_power(n):
    sd = 0.4
    mdd = minimal_detectable_difference(sd, n)
    assert _simulated_paired_t_power(mdd, sd, n, trials=2000, seed=n) == pytest.approx(0.8, abs=0.05)
    # tighter, still fast
    assert _simulated_paired_t_power(mdd, sd, n, trials=40000, seed=100 + n) == pytest.approx(0.8, abs=0.015)
    # below it, clearly less power
    assert _simulated_paired_t_power(0.5 * mdd, sd, n, trials=2000, seed=200 + n) < 0.6


def test_minimal_detectable_difference_textbook_formula():
    for n in (2, 3, 10):
        expected = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * 0.3 / math.sqrt(n)
        assert minimal_detectable_difference(0.3, n, exact=False) == pytest.approx(expected)
    # The shortcut overstates power at n = 2 (about 73 %), which is why exact is the default.
    approx = minimal_detectable_difference(1.0, 2, exact=False)
    assert _simulated_paired_t_power(approx, 1.0, 2, trials=40000, seed=7) < 0.76
    assert minimal_detectable_difference(1.0, 2) > approx
    # ... and converges to it with many seeds.
    textbook_30 = minimal_detectable_difference(1.0, 30, exact=False)
    assert minimal_detectable_difference(1.0, 30) == pytest.approx(textbook_30, rel=0.01)


def test_minimal_detectable_difference_none_and_scaling():
    assert minimal_detectable_difference(None, 3) is None
    assert minimal_detectable_difference(0.5, 1) is None
    assert minimal_detectable_difference(0.0, 3) == 0.0
    assert minimal_detectable_difference(1.0, 3) == pytest.approx(2 * minimal_detectable_difference(0.5, 3))
    mdds = [minimal_detectable_difference(1.0, n) for n in (2, 3, 5, 10)]
    assert mdds == sorted(mdds, reverse=True)
    assert minimal_detectable_difference(1.0, 5, power=0.9) > minimal_detectable_difference(1.0, 5)


def test_minimal_detectable_difference_images_formula_and_power():
    mdd = minimal_detectable_difference_images(0.08, 10_000)
    assert mdd == pytest.approx((1.959964 + 0.841621) * math.sqrt(0.08 / 10_000) * 100, rel=1e-5)
    # Simulate discordant counts at that true difference; exact McNemar rejects about 80 % of the time.
    n, p_disc = 10_000, 0.08
    delta = mdd / 100
    p_only_a, p_only_b = (p_disc + delta) / 2, (p_disc - delta) / 2
    counts = np.random.default_rng(5).multinomial(n, [p_only_a, p_only_b, 1 - p_disc], size=4000)
    k, m = counts[:, 0], counts[:, 0] + counts[:, 1]
    p = np.minimum(1, 2 * np.minimum(stats.binom.cdf(k, m, 0.5), stats.binom.sf(k - 1, m, 0.5)))
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.05)


# --------------------------------------------------------------------------- verdicts


EXPECTED_VERDICT = {
    (): "not tested here",
    ("supports",): "reproduced",
    ("contradicts",): "not reproduced",
    ("inconclusive",): "inconclusive at this budget",
    ("contradicts", "supports"): "partly",
    ("inconclusive", "supports"): "partly",
    ("contradicts", "inconclusive"): "not reproduced",
    ("contradicts", "inconclusive", "supports"): "partly",
}


@pytest.mark.parametrize("outcomes", list(EXPECTED_VERDICT))
@pytest.mark.parametrize("copies", [1, 2])
def test_decide_on_every_combination(outcomes, copies):
    checks = [Check(f"claim {i}", o, "detail", None) for i, o in enumerate(outcomes * copies)]
    assert decide(checks) == EXPECTED_VERDICT[outcomes]
    assert decide(list(reversed(checks))) == EXPECTED_VERDICT[outcomes]
    assert EXPECTED_VERDICT[outcomes] in VERDICTS


def test_decide_covers_all_outcome_sets():
    outcomes = ("contradicts", "inconclusive", "supports")
    all_sets = {c for r in range(4) for c in itertools.combinations(outcomes, r)}
    assert all_sets == set(EXPECTED_VERDICT)


# --------------------------------------------------------------------------- check_ranking


def test_check_ranking_supports_and_detail_format():
    check = check_ranking("Mixup", "Vanilla", [95.6, 95.9, 95.4], [95.0, 95.1, 95.0])
    assert check.outcome == "supports"
    assert check.statement == "Mixup > Vanilla"
    assert check.detectable == pytest.approx(minimal_detectable_difference(np.std([0.6, 0.8, 0.4], ddof=1), 3))
    # d = (0.6, 0.8, 0.4): sd 0.2, half-width t(0.975, 2) * 0.2 / sqrt(3) = 0.497
    assert check.detail == (
        "Mixup - Vanilla = +0.60 ± 0.20 points (mean ± sd over 3 paired seeds, 95% CI [0.10, 1.10]); "
        "smallest detectable 0.65 points"
    )
    assert decide([check]) == "reproduced"


def test_check_ranking_contradicts():
    check = check_ranking("AutoMix", "Mixup", [95.0, 95.1, 95.0], [95.6, 95.9, 95.4])
    assert check.outcome == "contradicts"
    assert decide([check]) == "not reproduced"


def test_check_ranking_inconclusive_reports_detectable():
    check = check_ranking("A", "B", [95.6, 94.9, 95.4], [95.0, 95.3, 95.0])
    assert check.outcome == "inconclusive"
    assert check.detectable is not None and check.detectable > 0
    assert "smallest detectable" in check.detail
    assert decide([check]) == "inconclusive at this budget"


def test_check_ranking_outcome_agrees_with_ttest_rel():
    # Including near-boundary cases: supports iff p < 0.05 with a > b, contradicts iff p < 0.05 with a < b.
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(150):
        n = int(rng.integers(2, 6))
        b = 94 + rng.normal(0, 0.5, n)
        a = b + rng.normal(rng.uniform(-0.8, 0.8), rng.uniform(0.05, 0.6), n)
        test = stats.ttest_rel(a, b)
        expected = "inconclusive" if test.pvalue >= 0.05 else "supports" if test.statistic > 0 else "contradicts"
        assert check_ranking("A", "B", a, b).outcome == expected, (a, b, test)
        seen.add(expected)
    assert seen == {"supports", "contradicts", "inconclusive"}


def test_check_ranking_claim_b_over_a_flips_outcome():
    a, b = [95.6, 95.9, 95.4], [95.0, 95.1, 95.0]
    assert check_ranking("A", "B", a, b, claimed="b>a").outcome == "contradicts"
    assert check_ranking("A", "B", b, a, claimed="b>a").outcome == "supports"
    assert check_ranking("A", "B", a, b, claimed="b>a").statement == "B > A"


def test_check_ranking_mcnemar_is_reported_but_does_not_decide_with_seeds():
    correct_a, correct_b = _correctness(200, 100, 9000, 700)  # very significant for this network pair
    check = check_ranking("A", "B", [95.6, 94.9, 95.4], [95.0, 95.3, 95.0], correct_a=correct_a, correct_b=correct_b)
    assert check.outcome == "inconclusive"
    assert "McNemar" in check.detail and "only A right 200" in check.detail


def test_check_ranking_single_seed():
    no_images = check_ranking("A", "B", [95.3], [95.0])
    assert no_images.outcome == "inconclusive" and no_images.detectable is None
    assert "1 seed" in no_images.detail

    wins = _correctness(200, 100, 9000, 700)
    assert check_ranking("A", "B", [95.3], [95.0], correct_a=wins[0], correct_b=wins[1]).outcome == "supports"
    assert check_ranking("A", "B", [95.0], [95.3], correct_a=wins[1], correct_b=wins[0]).outcome == "contradicts"

    close = _correctness(105, 100, 9000, 795)  # p far above 0.05
    check = check_ranking("A", "B", [95.05], [95.0], correct_a=close[0], correct_b=close[1])
    assert check.outcome == "inconclusive"
    assert check.detectable == pytest.approx(minimal_detectable_difference_images(205 / 10_000, 10_000))
    assert "smallest detectable" in check.detail


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "correct_a, correct_b",
    [
        (np.array([True, False]), np.array([True, False, True])),  # different lengths
        (np.array([1, 0, 1]), np.array([1, 1, 0])),  # not boolean
        (np.array([0.9, 0.1]), np.array([True, False])),  # not boolean
        (np.array([], dtype=bool), np.array([], dtype=bool)),  # empty
        (np.ones((2, 2), dtype=bool), np.ones((2, 2), dtype=bool)),  # not 1-D
    ],
)
def test_invalid_correctness_raises(correct_a, correct_b):
    with pytest.raises(InvalidParameterError):
        mcnemar(correct_a, correct_b)
    with pytest.raises(InvalidParameterError):
        bootstrap_difference(correct_a, correct_b)
    with pytest.raises(InvalidParameterError):
        check_ranking("A", "B", [1.0], [0.0], correct_a=correct_a, correct_b=correct_b)


@pytest.mark.parametrize(
    "call",
    [
        lambda: paired_seed_difference([1.0, 2.0], [1.0]),
        lambda: paired_seed_difference([], []),
        lambda: paired_seed_difference([1.0, float("nan")], [1.0, 2.0]),
        lambda: paired_seed_difference(["x"], [1.0]),
        lambda: paired_seed_difference([1.0, 2.0], [1.0, 1.5], confidence=1.5),
        lambda: bootstrap_difference(np.array([True]), np.array([False]), n_resamples=0),
        lambda: minimal_detectable_difference(-1.0, 3),
        lambda: minimal_detectable_difference(1.0, 3, power=0.01),
        lambda: minimal_detectable_difference(1.0, 3, alpha=0.0),
        lambda: minimal_detectable_difference_images(1.5, 100),
        lambda: minimal_detectable_difference_images(0.1, 0),
        lambda: Check("claim", "maybe", "detail", None),
        lambda: decide(["supports"]),
        lambda: check_ranking("A", "B", [1.0], [0.0], claimed="a=b"),
        lambda: check_ranking("A", "B", [1.0], [0.0], correct_a=np.array([True])),
    ],
)
def test_invalid_parameters_raise(call):
    with pytest.raises(InvalidParameterError):
        call()


def test_mcnemar_bound_is_never_below_the_exact_p_value():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(20, 400))
        a = rng.random(n) < rng.uniform(0.2, 0.9)
        b = rng.random(n) < rng.uniform(0.2, 0.9)
        exact = paired.mcnemar(a, b).p_value
        assert paired.mcnemar_bound(int(a.sum()), int(b.sum()), n) >= exact - 1e-12


def test_mcnemar_bound_decides_a_one_seed_gap_only_when_it_is_large():
    assert paired.mcnemar_bound(3650, 2100, 5000) < 1e-10  # a 31-point gap on 5,000 images
    assert paired.mcnemar_bound(3650, 3600, 5000) > 0.05  # a 1-point gap: the counts cannot tell
    big = paired.check_ranking("online", "EMA", [73.0], [42.0], n_images=5000)
    assert big.outcome == "supports" and "bound from the accuracies" in big.detail
    small = paired.check_ranking("online", "EMA", [73.0], [72.0], n_images=5000)
    assert small.outcome == "inconclusive"
    with pytest.raises(InvalidParameterError):
        paired.mcnemar_bound(5001, 10, 5000)


# --------------------------------------------------------------------------- seed pairing of SeedStats


def _stats(values, seeds, correct=()):
    return SeedStats(tuple(values), tuple(correct), seeds=tuple(seeds))


def test_check_order_pairs_only_the_seeds_both_methods_have():
    from mixrepro.study.verdicts import check_order

    # a has a third seed b lacks: the comparison must use seeds 0 and 1 only, paired by seed
    a = _stats([81.0, 80.0, 50.0], seeds=[0, 1, 2])
    b = _stats([79.5, 80.5], seeds=[1, 0])  # listed in another order
    check = check_order("A", a, "B", b)
    # per seed: 81.0 - 80.5 = +0.5 (seed 0), 80.0 - 79.5 = +0.5 (seed 1); seed 2's 50.0 is not used
    assert "+0.50 ± 0.00" in check.detail and "over 2 paired seeds" in check.detail


def test_check_order_with_one_shared_seed_compares_every_network_with_every_network():
    from mixrepro.study.verdicts import check_order

    correct_a = [np.array([True, True, False]), np.array([True, True, True])]
    correct_b = [np.array([True, False, False])]
    a = _stats([80.0, 82.0], seeds=[1, 0], correct=correct_a)
    b = _stats([79.0], seeds=[0], correct=correct_b)
    check = check_order("A", a, "B", b)
    seed1, seed0 = check.detail.split("; seed 0 vs seed 0: ")
    assert seed1.startswith("every network against every network: seed 1 vs seed 0:")
    assert "+1.00 points (1 seed" in seed1 and "only A right 1, only B right 0" in seed1  # A's seed 1: 80.0
    assert "+3.00 points (1 seed" in seed0 and "only A right 2, only B right 0" in seed0  # A's seed 0: 82.0


def test_one_seed_against_a_method_whose_seeds_disagree_is_inconclusive():
    """The study's FGSM error: AdAutoMix (seed 0 only) 71.78; AutoMix 76.96 (seed 0) and 65.68 (seed 1).
    Seed 0 alone said 'lower', significantly; AutoMix's seed-1 network says the opposite."""
    from mixrepro.study.verdicts import check_order

    adautomix = SeedStats((71.78,), n_images=10_000, seeds=(0,))
    automix = SeedStats((76.96, 65.68), n_images=10_000, seeds=(0, 1))
    check = check_order("AdAutoMix", adautomix, "AutoMix", automix, higher_is_better=False)
    assert check.outcome == "inconclusive"
    assert "seed 0 vs seed 0: supports" in check.detail and "seed 0 vs seed 1: contradicts" in check.detail
    assert check_order("AdAutoMix", adautomix, "AutoMix", SeedStats((76.96, 79.0), n_images=10_000, seeds=(0, 1)),
                       higher_is_better=False).outcome == "supports"  # beats both networks: supported
    assert check_order("AdAutoMix", adautomix, "AutoMix", SeedStats((60.0, 65.68), n_images=10_000, seeds=(0, 1)),
                       higher_is_better=False).outcome == "contradicts"


def test_a_constant_takes_the_seeds_of_what_it_is_compared_with():
    from mixrepro.study.verdicts import check_order

    gap = _stats([-4.0, -5.0, -6.0], seeds=[0, 1, 2])  # e.g. confidence - accuracy over three seeds
    check = check_order("gap", gap, "zero", SeedStats.constant(0.0, gap), higher_is_better=False)
    assert check.outcome == "supports" and "over 3 paired seeds" in check.detail
    with pytest.raises(InvalidParameterError, match="same number of seeds"):
        check_order("gap", gap, "zero", SeedStats((0.0,)))  # one value cannot stand for three seeds


def test_shares_seeds_by_seed_where_known_else_by_count():
    three, seed0, seed2 = _stats([1.0, 2.0, 3.0], seeds=[0, 1, 2]), _stats([1.0], seeds=[0]), _stats([1.0], seeds=[2])
    assert three.shares_seeds(seed0) and seed0.shares_seeds(seed2) is False
    assert SeedStats((1.0, 2.0)).shares_seeds(SeedStats((3.0, 4.0)))
    assert not SeedStats((1.0, 2.0)).shares_seeds(SeedStats((3.0,)))


def test_check_order_refuses_methods_without_a_common_seed():
    from mixrepro.study.verdicts import check_order

    with pytest.raises(InvalidParameterError, match="at least one seed both"):
        check_order("A", _stats([80.0], seeds=[0]), "B", _stats([79.0], seeds=[1]))


def test_seed_stats_without_seed_ids_still_need_equal_lengths():
    from mixrepro.study.scores import SeedStats
    from mixrepro.study.verdicts import check_order

    with pytest.raises(InvalidParameterError, match="same number of seeds"):
        check_order("A", SeedStats((80.0, 81.0)), "B", SeedStats((79.0,)))
    with pytest.raises(InvalidParameterError, match="one seed per value"):
        SeedStats((80.0, 81.0), seeds=(0,))


def test_seed_stats_over_runs_labels_values_with_the_runs_seeds():
    from types import SimpleNamespace

    from mixrepro.study.scores import SeedStats

    runs = [SimpleNamespace(config=SimpleNamespace(seed=s), score=v) for s, v in ((2, 70.0), (0, 71.0))]
    stats = SeedStats.over_runs(runs, lambda r: r.score)
    assert stats.values == (70.0, 71.0) and stats.seeds == (2, 0)
    assert stats.on_seeds([0]).values == (71.0,)


def test_winner_texts_name_the_winner_and_the_best_other_method():
    from mixrepro.study import load_paper_table
    from mixrepro.study.scores import SeedStats
    from mixrepro.study.verdicts import paper_winner_text, winner_text

    table = load_paper_table("automix_table1")
    stats = {"automix": SeedStats((80.0, 81.0)), "mixup": SeedStats((79.0,)), "puzzlemix": SeedStats((81.5,))}
    assert winner_text("automix", stats, table) == "AutoMix 80.50 ± 0.71 (n=2); best other: PuzzleMix 81.50 (1 seed)"
    assert winner_text("automix", stats, table, higher_is_better=False).endswith("MixUp 79.00 (1 seed)")  # paper label
    assert winner_text("samix", stats, table) == ""
    best = max((m for m in table.rows if m != "automix" and table.value(m, "c10_r18") is not None),
               key=lambda m: table.value(m, "c10_r18"))
    text = paper_winner_text("automix", table, "c10_r18")
    assert text.startswith("AutoMix 97.34; best other: ") and table.label(best) in text


def test_smallest_gain_texts_pair_the_seeds_each_method_shares_with_the_baseline():
    from mixrepro.study import load_paper_table
    from mixrepro.study.verdicts import paper_smallest_gain_text, smallest_gain_text

    table = load_paper_table("automix_table13")
    column = next(iter(table.columns))
    vanilla = _stats([79.0, 81.0], seeds=[0, 1])
    stats = {"vanilla": vanilla, "mixup": _stats([79.5], seeds=[0]), "cutmix": _stats([82.0, 82.5], seeds=[0, 1])}
    # Mixup against Vanilla's seed 0 only: +0.50 (against Vanilla's mean of both seeds it would read -0.50)
    assert smallest_gain_text("vanilla", stats, table) == "smallest gain over Vanilla: MixUp +0.50 (1 seed)"
    assert smallest_gain_text("automix", stats, table) == ""
    gains = {m: table.value(m, column) - table.value("vanilla", column) for m in table.rows
             if m != "vanilla" and table.value(m, column) is not None}
    smallest = min(gains, key=gains.get)
    assert paper_smallest_gain_text("vanilla", table, column).endswith(
        f"{table.label(smallest)} {gains[smallest]:+.{table.digits}f}")


def test_value_texts_show_ours_and_the_papers_numbers_for_the_methods_a_claim_names():
    from mixrepro.study import load_paper_table
    from mixrepro.study.scores import SeedStats
    from mixrepro.study.verdicts import paper_values_text, paper_versus_text, values_text, versus_text

    t6 = load_paper_table("automix_table6")
    error = {"vanilla": SeedStats((92.0, 91.0)), "mixup": SeedStats((78.3,)), "samix": SeedStats((80.0,))}
    # the claim's methods in its order, paper labels, seeds shown; a method without runs is left out
    assert values_text(error, t6.label, ["vanilla", "mixup", "cutmix"]) == \
        "Vanilla 91.50 ± 0.71 (n=2); MixUp 78.30 (1 seed)"
    assert values_text(error, t6.label, ["cutmix"]) == ""
    assert paper_values_text(t6, ["vanilla", "mixup", "cutmix"], "fgsm_error") == \
        f"Vanilla {t6.value('vanilla', 'fgsm_error'):.2f} vs MixUp {t6.value('mixup', 'fgsm_error'):.2f} vs " \
        f"CutMix {t6.value('cutmix', 'fgsm_error'):.2f} (FGSM error (%))"
    a7 = load_paper_table("dm_tableA7")
    text = paper_versus_text(a7, ["mixup", "vanilla"], "c100_acc_dm", "c100_acc_mce")  # no Vanilla row in A7
    assert text == (f"Mixup {a7.value('mixup', 'c100_acc_dm'):.2f} vs {a7.value('mixup', 'c100_acc_mce'):.2f} "
                    "(CIFAR-100 acc DM(CE) vs CIFAR-100 acc MCE)")
    assert paper_versus_text(a7, ["vanilla"], "c100_acc_dm", "c100_acc_mce") == ""
    dm = {"mixup": _stats([80.0, 81.0], seeds=[0, 1]), "cutmix": _stats([70.0], seeds=[0])}
    mce = {"mixup": _stats([79.0, 79.5, 90.0], seeds=[0, 1, 2])}
    # seed 2 has no DM(CE) run: the MCE mean is over seeds 0 and 1, as the paired check compares them
    assert versus_text(dm, mce, a7.label, ["cutmix", "mixup"]) == "Mixup 80.50 vs 79.25 (n=2)"  # CutMix: no MCE


def test_fgsm_percentages_carry_their_test_images_and_a_one_seed_gap_can_decide():
    from types import SimpleNamespace

    from mixrepro.config import config_for_budget
    from mixrepro.study.scores import evaluation_stats
    from mixrepro.study.verdicts import check_order

    def run(method, error, ece):
        config = config_for_budget("cpu", method=method, dataset="cifar10-jpeg", seed=0)
        evals = {"fgsm": {"fgsm_error": error}, "ece": {"ece_percent_15bins": ece}}
        return SimpleNamespace(config=config, evaluations={"online": evals, "ema": evals})

    runs = {"mixup": [run("mixup", 78.69, 11.7)], "vanilla": [run("vanilla", 91.36, 14.3)]}
    fgsm = evaluation_stats(runs, "fgsm", "fgsm_error")
    assert fgsm["mixup"].n_images == 10_000 and fgsm["mixup"].seeds == (0,)
    assert evaluation_stats(runs, "ece", "ece_percent_15bins")["mixup"].n_images is None  # not a share of images
    check = check_order("Mixup", fgsm["mixup"], "Vanilla", fgsm["vanilla"], higher_is_better=False)
    assert check.outcome == "supports" and "bound from the accuracies alone" in check.detail


def test_mixed_sample_accuracy_carries_its_stored_count_of_mixed_images():
    from types import SimpleNamespace

    from mixrepro.config import config_for_budget
    from mixrepro.study.scores import evaluation_stats
    from mixrepro.study.verdicts import check_order

    def run(method, top1, n=9003):
        config = config_for_budget("cpu", method=method, dataset="cifar10-jpeg", seed=0)
        evals = {"mixed_accuracy": {"top1": top1, "top2": top1 / 5, "n": n}}
        return SimpleNamespace(config=config, evaluations={"online": evals, "ema": evals})

    runs = {"automix": [run("automix", 78.58)], "resizemix": [run("resizemix", 75.25)],
            "mixup": [run("mixup", 78.50, n=9000)]}
    top1 = evaluation_stats(runs, "mixed_accuracy", "top1")
    assert top1["automix"].n_images == 9003 and top1["mixup"].n_images == 9000
    decided = check_order("AutoMix", top1["automix"], "ResizeMix", top1["resizemix"], quantity="mixed top1")
    assert decided.outcome == "supports" and "bound from the accuracies alone" in decided.detail
    # other counts: not the same mixed images, so no bound; one seed alone cannot decide
    assert check_order("AutoMix", top1["automix"], "Mixup", top1["mixup"]).outcome == "inconclusive"


def test_a_nested_evaluation_number_is_read_by_its_path_and_carries_its_stored_count():
    from types import SimpleNamespace

    import pytest

    from mixrepro.config import config_for_budget
    from mixrepro.errors import MixreproError
    from mixrepro.study.scores import evaluation_stats

    def run(method, at_half):
        config = config_for_budget("cpu", method=method, dataset="cifar10-jpeg", seed=0)
        evals = {"occlusion": {"top1": {"0": 80.0, "0.5": at_half}, "images": 2000},
                 "corruption": {"mean": at_half, "images": 2000}}
        return SimpleNamespace(config=config, evaluations={"online": evals, "ema": evals})

    runs = {"adautomix": [run("adautomix", 15.25)], "cutmix": [run("cutmix", 21.15)]}
    half = evaluation_stats(runs, "occlusion", ("top1", "0.5"))
    assert half["cutmix"].mean == 21.15 and half["cutmix"].n_images == 2000  # the same occluded images
    assert evaluation_stats(runs, "corruption", "mean")["cutmix"].n_images is None  # 60 sets of them: no bound
    with pytest.raises(MixreproError, match="occlusion/top1/0.7"):
        evaluation_stats(runs, "occlusion", ("top1", "0.7"))


# --------------------------------------------------------------------------- per-image statistics (ECE)


def _calibration_inputs(n=3000, scale=3.0, seed=0):
    """Logits of a network whose confidence (scale) can be turned up or down, and labels."""
    import torch

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    logits = torch.randn(n, 10, generator=g) + 2.0 * torch.nn.functional.one_hot(labels, 10)
    return logits * scale, labels


def _binned(logits, labels, n_bins=10):
    from mixrepro.evaluate.calibration import confidence_and_correct

    confidence, correct = confidence_and_correct(logits, labels, from_logits=True)
    return paired.BinnedCalibration.from_images(confidence.numpy(), correct.numpy(), n_bins)


@pytest.mark.parametrize("n_bins", [10, 15])
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_binned_calibration_is_ece_with_unit_weights(n_bins, scale):
    from mixrepro.evaluate.calibration import ece

    logits, labels = _calibration_inputs(scale=scale)
    assert _binned(logits, labels, n_bins).value() == pytest.approx(100 * ece(logits, labels, n_bins), abs=1e-9)


def test_binned_calibration_resample_is_ece_of_the_resampled_images():
    from mixrepro.evaluate.calibration import ece

    logits, labels = _calibration_inputs(n=500)
    index = np.random.default_rng(3).integers(0, 500, size=500)
    weights = np.bincount(index, minlength=500)[None, :].astype(float)
    resampled = 100 * ece(logits[index], labels[index], 10)
    assert _binned(logits, labels).weighted(weights)[0] == pytest.approx(resampled, abs=1e-9)


def test_image_mean_is_the_mean_in_percent():
    values = np.array([0.0, 0.5, 1.0, 1.0])
    assert paired.ImageMean(values).weighted(np.ones((1, 4)))[0] == pytest.approx(62.5)
    assert paired.ImageMean(values).weighted(np.array([[2.0, 0, 0, 2.0]]))[0] == pytest.approx(50.0)


def test_bootstrap_statistic_difference_matches_resampling_indices():
    from mixrepro.evaluate.calibration import ece

    logits, labels = _calibration_inputs(n=400)
    a, b = _binned(logits, labels), _binned(logits * 0.6, labels)
    result = paired.bootstrap_statistic_difference(a, b, n_resamples=300, seed=5, chunk=300)
    index = np.random.default_rng(5).integers(0, 400, size=(300, 400))
    by_hand = [100 * (ece(logits[i], labels[i], 10) - ece(0.6 * logits[i], labels[i], 10)) for i in index]
    assert result.difference == pytest.approx(100 * (ece(logits, labels, 10) - ece(0.6 * logits, labels, 10)))
    assert (result.low, result.high) == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])), abs=1e-9)
    assert result.sd == pytest.approx(np.std(by_hand, ddof=1), abs=1e-9)


def test_bootstrap_statistic_difference_is_reproducible():
    logits, labels = _calibration_inputs(n=800)
    a, b = _binned(logits, labels), _binned(logits * 0.8, labels)
    one = paired.bootstrap_statistic_difference(a, b, n_resamples=500, seed=1, chunk=500)
    assert one == paired.bootstrap_statistic_difference(a, b, n_resamples=500, seed=1, chunk=500)
    assert one != paired.bootstrap_statistic_difference(a, b, n_resamples=500, seed=2, chunk=500)
    assert one.low < one.difference < one.high


def test_bootstrap_statistic_difference_rejects_unequal_images():
    with pytest.raises(InvalidParameterError, match="same 3 images"):
        paired.bootstrap_statistic_difference(paired.ImageMean(np.ones(3)), paired.ImageMean(np.ones(4)))


def test_check_ranking_one_seed_decided_by_image_bootstrap():
    logits, labels = _calibration_inputs()
    low, high = sorted([_binned(logits, labels), _binned(logits * 3.0, labels)], key=lambda s: s.value())
    assert high.value() - low.value() > 5  # far apart on 3000 images
    # "a has the lower ECE" is claimed as b > a
    holds = check_ranking("A", "B", [low.value()], [high.value()], claimed="b>a", images_a=low, images_b=high)
    assert holds.outcome == "supports" and "paired bootstrap over 3000 test images" in holds.detail
    fails = check_ranking("A", "B", [high.value()], [low.value()], claimed="b>a", images_a=high, images_b=low)
    assert fails.outcome == "contradicts"
    same = check_ranking("A", "B", [low.value()], [low.value()], images_a=low, images_b=low)
    assert same.outcome == "inconclusive" and same.detectable == 0.0 and "smallest detectable" in same.detail
    # with two seeds the seeds decide, the images do not
    two = check_ranking("A", "B", [1.0, 1.2], [1.1, 1.0], images_a=low, images_b=high)
    assert "bootstrap" not in two.detail


def _ece_run(method, seed, logits, labels, stored_shift=0.0):
    """A stand-in run record whose ECE evaluation and 'confidence' evaluation come from the same logits."""
    from types import SimpleNamespace

    from mixrepro.config import config_for_budget
    from mixrepro.evaluate.calibration import calibration_report, confidence_and_correct
    from mixrepro.evaluate.predictions import encode_confidence

    report = calibration_report(logits, labels, from_logits=True)
    report["ece_percent_10bins"] += stored_shift
    evals = {"ece": report, "confidence": encode_confidence(*confidence_and_correct(logits, labels, True))}
    config = config_for_budget("cpu", method=method, dataset="cifar10-jpeg", seed=seed)
    return SimpleNamespace(config=config, evaluations={"online": evals, "ema": evals})


def test_ece_stats_carry_per_image_calibration_and_one_seed_can_decide():
    from mixrepro.study.scores import evaluation_stats
    from mixrepro.study.verdicts import check_order

    logits, labels = _calibration_inputs()
    runs = {"cutmix": [_ece_run("cutmix", 0, logits, labels)], "mixup": [_ece_run("mixup", 0, 3 * logits, labels)]}
    ece = evaluation_stats(runs, "ece", "ece_percent_10bins")
    assert ece["cutmix"].images[0].value() == pytest.approx(ece["cutmix"].mean, abs=1e-4)
    lower, higher = sorted(ece, key=lambda m: ece[m].mean)
    check = check_order(lower, ece[lower], higher, ece[higher], higher_is_better=False, quantity="ECE")
    assert check.outcome == "supports" and "paired bootstrap" in check.detail
    assert ece["cutmix"].on_seeds([0]).images == ece["cutmix"].images
    wrong_rule = evaluation_stats(runs, "ece", "ece_percent_10bins_reference_sorted_WRONG")
    assert wrong_rule["cutmix"].images == ()  # not the ECE the confidences give


def test_ece_stats_refuse_confidences_of_another_network():
    from mixrepro.errors import MixreproError
    from mixrepro.study.scores import evaluation_stats

    logits, labels = _calibration_inputs()
    runs = {"cutmix": [_ece_run("cutmix", 0, logits, labels, stored_shift=0.5)]}
    with pytest.raises(MixreproError, match="re-run its 'ece' and 'confidence' evaluations"):
        evaluation_stats(runs, "ece", "ece_percent_10bins")
    assert evaluation_stats(runs, "ece", "ece_percent_15bins")["cutmix"].images  # that number agrees


def test_ece_stats_of_runs_without_confidences_fall_back_to_their_reliability_diagrams():
    from mixrepro.study.scores import evaluation_stats

    logits, labels = _calibration_inputs()
    bare = _ece_run("cutmix", 1, logits, labels)
    bare.evaluations = {net: {"ece": e["ece"]} for net, e in bare.evaluations.items()}
    runs = {"cutmix": [_ece_run("cutmix", 0, logits, labels), bare]}
    per_image, diagram = evaluation_stats(runs, "ece", "ece_percent_10bins")["cutmix"].images
    assert isinstance(per_image, paired.BinnedCalibration) and isinstance(diagram, paired.DiagramCalibration)
    assert diagram.value() == pytest.approx(per_image.value(), abs=1e-6)
    bare.evaluations = {net: {"ece": {"ece_percent_10bins": e["ece"]["ece_percent_10bins"]}}
                        for net, e in bare.evaluations.items()}  # neither: no bootstrap for the method
    assert evaluation_stats(runs, "ece", "ece_percent_10bins")["cutmix"].images == ()


def _diagram(logits, labels, n_bins=10):
    from mixrepro.evaluate.calibration import reliability_diagram_data

    return paired.DiagramCalibration.from_diagram(reliability_diagram_data(logits, labels, n_bins, from_logits=True))


@pytest.mark.parametrize("n_bins", [10, 15])
def test_diagram_calibration_is_the_ece_and_resamples_at_least_as_widely_as_the_images(n_bins):
    from mixrepro.evaluate.calibration import ece

    logits, labels = _calibration_inputs()
    diagram, images = _diagram(logits, labels, n_bins), _binned(logits, labels, n_bins)
    assert diagram.value() == pytest.approx(100 * ece(logits, labels, n_bins), abs=1e-9)
    assert diagram.n_images == images.n_images == 3000
    rng = np.random.default_rng(0)
    # the within-bin confidence spread is bounded from above: the simulation varies a little more, never less
    assert diagram.resampled(rng, 4000).std() >= 0.97 * images.resampled(rng, 4000).std()


def test_worst_case_pairing_covers_networks_whose_ece_moves_in_opposite_directions():
    # an over-confident and an under-confident network on the same images: a harder resample raises one ECE
    # and lowers the other, so the paired difference varies more than independent resamples would
    logits, labels = _calibration_inputs(scale=1.0)
    over, under = _binned(logits * 4.0, labels), _binned(logits * 0.45, labels)
    paired_result = paired.bootstrap_statistic_difference(over, under)
    worst = paired.worst_case_bootstrap_difference(over, under)
    independent = np.std(over.resampled(np.random.default_rng(1), 2000) - under.resampled(
        np.random.default_rng(2), 2000), ddof=1)
    assert independent < paired_result.sd <= worst.sd
    slack = 0.1 * worst.sd  # percentiles of 2000 resamples: here the two are almost perfectly anti-correlated
    assert worst.low <= paired_result.low + slack and paired_result.high <= worst.high + slack
    assert worst.difference == pytest.approx(paired_result.difference)


def test_check_ranking_with_a_diagram_only_run_says_so_and_decides_a_large_gap():
    logits, labels = _calibration_inputs()
    low, high = sorted([_diagram(logits, labels), _binned(logits * 3.0, labels)], key=lambda s: s.value())
    check = check_ranking("A", "B", [low.value()], [high.value()], claimed="b>a", images_a=low, images_b=high)
    assert check.outcome == "supports" and "reliability diagram" in check.detail
