"""Paired statistics for the study's verdicts: seeds are paired, test images are paired.

Two kinds of pairing carry the evidence. Runs of two methods with the same seed
see the same data order and start from the same initialisation, so per-seed
scores are compared as paired differences (a paired t interval over seeds).
Runs also store their predicted class on one shared test set, so two networks
can be compared image by image (McNemar's exact test, a paired bootstrap); a
score that is not a rate of right answers (ECE) is compared by resampling the
images (``bootstrap_statistic_difference`` on per-image confidences, or
``worst_case_bootstrap_difference`` from a stored reliability diagram).
The seed comparison is the one that speaks about *methods*: an image-level test
only says that two particular networks differ, and seed-to-seed variation is
usually larger than what it detects. It is therefore reported, and only decides
when there is a single seed. (For the main table's methods at the cpu budget the seed
comparison itself is replaced by one against the spread pooled over all the study's arms:
``mixrepro.study.pooled``.)

Every check of a claim ends in one of three outcomes: "supports",
"contradicts" or "inconclusive" (the data cannot tell at this budget; the
check then says how large a difference the seeds could have detected).
A claim's checks are turned into a verdict by this rule, in plain words:

- no checks at all: "not tested here";
- every check supports the claim: "reproduced";
- at least one check contradicts it and none supports it: "not reproduced"
  (inconclusive checks beside a contradiction do not rescue the claim);
- some checks support it and others contradict it, or some support it and the
  rest are inconclusive: "partly";
- every check is inconclusive: "inconclusive at this budget" -- this is not a
  failure to reproduce, only a statement that the seeds and images we could
  afford cannot tell, together with the smallest difference they could have seen.

Pure functions on numpy arrays (numpy and scipy only; ``BinnedCalibration.from_images`` borrows
the ECE's binning from ``evaluate.calibration``, so both use one rule). Differences
are in percentage points when the inputs are accuracies in percent or boolean
correctness arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import integrate, optimize, stats

from ..errors import InvalidParameterError

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive at this budget", "not tested here")
OUTCOMES = ("supports", "contradicts", "inconclusive")
CLAIMS = ("a>b", "b>a")
# Every check's level: two-sided tests at ALPHA, intervals at CONFIDENCE (the book's chance scale reads it).
ALPHA = 0.05
CONFIDENCE = 1 - ALPHA


# --------------------------------------------------------------------------- validation


def _correctness_pair(correct_a, correct_b) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length, non-empty 1-D boolean arrays; anything else is a caller's mistake."""
    arrays = []
    for name, value in (("correct_a", correct_a), ("correct_b", correct_b)):
        arr = np.asarray(value)
        if arr.dtype != np.bool_ or arr.ndim != 1 or arr.size == 0:
            raise InvalidParameterError(name, (str(arr.dtype), arr.shape), "a non-empty 1-D boolean array")
        arrays.append(arr)
    if arrays[0].shape != arrays[1].shape:
        raise InvalidParameterError("correct_b", arrays[1].shape, f"the same length as correct_a {arrays[0].shape}")
    return arrays[0], arrays[1]


def _score_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length, non-empty 1-D arrays of finite per-seed scores."""
    arrays = []
    for name, value in (("a", a), ("b", b)):
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(name, value, "a sequence of finite numbers") from None
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise InvalidParameterError(name, value, "a non-empty 1-D sequence of finite numbers")
        arrays.append(arr)
    if arrays[0].shape != arrays[1].shape:
        raise InvalidParameterError("b", arrays[1].shape, f"the same number of seeds as a {arrays[0].shape}")
    return arrays[0], arrays[1]


def _probability(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    """A number strictly between low and high (confidence, alpha, power)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not low < value < high:
        raise InvalidParameterError(name, value, f"a number strictly between {low:g} and {high:g}")
    return float(value)


# --------------------------------------------------------------------------- image-level (one pair of networks)


@dataclass(frozen=True)
class McNemarResult:
    """Image-level comparison of two networks on the same test images."""

    n_images: int
    only_a: int  # images a gets right and b gets wrong
    only_b: int  # images b gets right and a gets wrong
    difference_points: float  # accuracy of a minus accuracy of b, percentage points
    p_value: float  # exact two-sided binomial test on the discordant pairs


def mcnemar(correct_a, correct_b) -> McNemarResult:
    """McNemar's exact test: do two networks err on the same images or does one win more often?

    Images both get right or both get wrong carry no information about which is
    better; only the discordant ones do, and under "no difference" each of them
    is equally likely to favour a or b (binomial with p = 1/2).
    """
    a, b = _correctness_pair(correct_a, correct_b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemarResult(
        n_images=int(a.size),
        only_a=only_a,
        only_b=only_b,
        difference_points=100.0 * (only_a - only_b) / a.size,
        p_value=min(1.0, p),
    )


def mcnemar_bound(correct_count_a: int, correct_count_b: int, n_images: int) -> float:
    """The largest McNemar p-value two networks with these correct counts on the same images can have.

    Without per-image results the discordant images are unknown, but their net count is not:
    only_a - only_b = correct_a - correct_b. Under that constraint the exact test's p grows with
    the number of discordant images, so its value at the largest number the counts allow is an
    upper bound on the real p (a conservative test for runs that stored no predictions).
    """
    for name, value in (("correct_count_a", correct_count_a), ("correct_count_b", correct_count_b)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= n_images:
            raise InvalidParameterError(name, value, f"an integer in [0, {n_images}]")
    gap = correct_count_a - correct_count_b
    wrong_a, wrong_b = n_images - correct_count_a, n_images - correct_count_b
    most_discordant = min(2 * min(correct_count_a, wrong_b) - gap, 2 * min(correct_count_b, wrong_a) + gap)
    if most_discordant <= 0:
        return 1.0
    only_a = (most_discordant + gap) // 2
    return min(1.0, float(stats.binomtest(only_a, most_discordant, 0.5).pvalue))


def bootstrap_difference(
    correct_a, correct_b, *, n_resamples: int = 2000, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of accuracy(a) - accuracy(b) in points, resampling images jointly.

    Resampling whole images (both networks' answers together) keeps the pairing.
    The difference only depends on how many resampled images are "only a right"
    and "only b right", so drawing those counts from a multinomial is the same
    distribution as drawing image indices with replacement, without building an
    n_resamples x n_images index matrix.
    """
    a, b = _correctness_pair(correct_a, correct_b)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise InvalidParameterError("n_resamples", n_resamples, "a positive integer")
    confidence = _probability("confidence", confidence)
    n = a.size
    p_only_a, p_only_b = np.sum(a & ~b) / n, np.sum(~a & b) / n
    probs = np.array([p_only_a, p_only_b, max(0.0, 1.0 - p_only_a - p_only_b)])
    counts = np.random.default_rng(seed).multinomial(n, probs / probs.sum(), size=int(n_resamples))
    differences = 100.0 * (counts[:, 0] - counts[:, 1]) / n
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return float(low), float(high)


def _resample_weights(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """[rows, n] counts: how often each of n images is drawn in each of ``rows`` resamples with replacement."""
    index = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(index.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


class PerImageStatistic:
    """A network's score computed from its per-image results: subclasses give ``n_images`` and
    ``weighted(weights [R, N]) -> [R]`` (the score with each image counted ``weight`` times)."""

    def value(self) -> float:
        return float(self.weighted(np.ones((1, self.n_images)))[0])

    def resampled(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """[rows] scores of resamples of the images with replacement (nonparametric bootstrap)."""
        return self.weighted(_resample_weights(rng, rows, self.n_images))


@dataclass(frozen=True)
class ImageMean(PerImageStatistic):
    """A score that is the mean of a per-image value, in percent (e.g. the fraction of an image's corrupted
    versions a network gets right): weights over images give a resampled score."""

    values: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.values.size)

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """[R] scores for [R, N] image weights (resample counts)."""
        return 100.0 * (weights @ self.values) / weights.sum(1)


@dataclass(frozen=True)
class BinnedCalibration(PerImageStatistic):
    """One network's ECE (percent, equal-width bins) as a function of image weights.

    ECE = sum over bins |sum of (correct - confidence) over the bin's images| / N: an image's bin
    and its own term do not change when images are resampled, so a resample's ECE is one weighted
    sum per bin (``mixrepro.evaluate.calibration.ece`` with unit weights, as a test checks).
    """

    bin_index: np.ndarray  # bin of each image's confidence, (a, b] bins as evaluate.calibration
    gap: np.ndarray  # correct - confidence per image
    n_bins: int

    @classmethod
    def from_images(cls, confidence, correct, n_bins: int) -> "BinnedCalibration":
        confidence = np.asarray(confidence, dtype=np.float64)
        correct = np.asarray(correct)
        if confidence.ndim != 1 or correct.shape != confidence.shape or correct.dtype != np.bool_:
            raise InvalidParameterError("confidence, correct", (confidence.shape, correct.shape),
                                        "a 1-D float array and a boolean array of the same length")
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise InvalidParameterError("n_bins", n_bins, "a positive integer")
        import torch  # the bins are the ECE's own (evaluate.calibration), not a second copy of its edges

        from ..evaluate.calibration import bin_index

        bins = bin_index(torch.from_numpy(confidence), n_bins).numpy()
        return cls(bins, correct - confidence, n_bins)

    @property
    def n_images(self) -> int:
        return int(self.gap.size)

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """[R] ECEs (percent) for [R, N] image weights."""
        per_bin = [weights[:, self.bin_index == b] @ self.gap[self.bin_index == b] for b in range(self.n_bins)]
        return 100.0 * np.abs(np.stack(per_bin, axis=1)).sum(1) / weights.sum(1)


@dataclass(frozen=True)
class DiagramCalibration:
    """One network's ECE known only from its stored reliability diagram (per bin: images, accuracy, mean
    confidence), for runs that kept no per-image confidences.

    Resampling the images is then simulated from the diagram: the bins' image counts are multinomial,
    a bin's right answers binomial with its accuracy, and its summed confidence normal around the
    bin's mean with the largest spread confidences confined to the bin can have (half the bin
    width per image), so the simulated ECE varies at least as much as resampling real images would.
    """

    count: np.ndarray
    accuracy: np.ndarray  # 0 where a bin is empty (it never receives images)
    confidence: np.ndarray
    bin_width: float

    @classmethod
    def from_diagram(cls, diagram: dict) -> "DiagramCalibration":
        count = np.asarray(diagram["count"], dtype=np.float64)
        if count.ndim != 1 or count.sum() < 1:
            raise InvalidParameterError("reliability diagram", diagram.get("count"), "per-bin image counts, not all 0")

        def filled(values):
            return np.array([0.0 if v is None else float(v) for v in values])

        widths = np.asarray(diagram["bin_upper"], dtype=np.float64) - np.asarray(diagram["bin_lower"])
        return cls(count, filled(diagram["accuracy"]), filled(diagram["confidence"]), float(widths.max()))

    @property
    def n_images(self) -> int:
        return int(self.count.sum())

    def value(self) -> float:
        return float(100.0 * np.sum(self.count * np.abs(self.accuracy - self.confidence)) / self.n_images)

    def resampled(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        n = self.n_images
        counts = rng.multinomial(n, self.count / n, size=rows).astype(np.float64)
        right = rng.binomial(counts.astype(np.int64), self.accuracy)
        summed_confidence = rng.normal(counts * self.confidence, np.sqrt(counts) * self.bin_width / 2.0)
        return 100.0 * np.abs(right - summed_confidence).sum(1) / n


@dataclass(frozen=True)
class BootstrapDifference:
    """statistic(a) - statistic(b) on the same images with a percentile interval from resampling them."""

    n_images: int
    difference: float
    low: float
    high: float
    sd: float  # of the resampled differences: the difference's standard error over test images


def bootstrap_statistic_difference(a, b, *, n_resamples: int = 2000, seed: int = 0, confidence: float = CONFIDENCE,
                                   chunk: int = 250) -> BootstrapDifference:
    """Paired percentile bootstrap of ``a`` minus ``b`` (ImageMean, BinnedCalibration: anything with
    ``weighted`` and ``n_images``) over the test images both were measured on.

    Each resample draws N image indices with replacement, the same for both networks (the pairing),
    expressed as per-image counts; chunks of resamples keep the [R, N] count matrix small.
    """
    _check_bootstrap(a, b, n_resamples)
    n, rng = a.n_images, np.random.default_rng(seed)
    differences = []
    for start in range(0, int(n_resamples), chunk):
        weights = _resample_weights(rng, min(chunk, int(n_resamples) - start), n)
        differences.append(a.weighted(weights) - b.weighted(weights))
    return _percentile_interval(a, b, np.concatenate(differences), confidence)


def worst_case_bootstrap_difference(a, b, *, n_resamples: int = 2000, seed: int = 0,
                                    confidence: float = CONFIDENCE) -> BootstrapDifference:
    """Percentile bootstrap of ``a`` minus ``b`` when the two cannot be resampled together (anything with
    ``resampled``, ``value`` and ``n_images``; e.g. a DiagramCalibration, which has no per-image results).

    Each network's images are resampled on its own, and the resamples are then paired the other way
    round by rank (a's largest with b's smallest): of all the ways the two could go together over the
    images, this one gives a - b the largest variance. Independence would not do: two networks' ECEs on
    the same images can move in opposite directions (a harder resample raises an over-confident
    network's ECE and lowers an under-confident one's), which widens the paired interval beyond an
    independent one (seen on the study's Vanilla and Mixup runs).
    """
    _check_bootstrap(a, b, n_resamples)
    rng_a, rng_b = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    differences = np.sort(a.resampled(rng_a, int(n_resamples))) - np.sort(b.resampled(rng_b, int(n_resamples)))[::-1]
    return _percentile_interval(a, b, differences, confidence)


def _check_bootstrap(a, b, n_resamples) -> None:
    if a.n_images != b.n_images or a.n_images < 1:
        raise InvalidParameterError("b", b.n_images, f"statistics on the same {a.n_images} images as a")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise InvalidParameterError("n_resamples", n_resamples, "a positive integer")


def _percentile_interval(a, b, differences: np.ndarray, confidence: float) -> BootstrapDifference:
    tail = 100.0 * (1.0 - _probability("confidence", confidence)) / 2.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return BootstrapDifference(a.n_images, a.value() - b.value(), float(low), float(high),
                               float(differences.std(ddof=1)))


# --------------------------------------------------------------------------- seed-level (the method)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences a - b with a t interval; spread fields are None for one seed."""

    n: int
    mean_difference: float
    sd_difference: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None


def paired_seed_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> PairedDifference:
    """Paired t interval of mean(a - b) over seeds given in the same seed order.

    Same seed = same data order and initialisation, so the per-seed difference
    removes the seed's own luck; with n seeds the interval has n - 1 degrees of
    freedom (very wide at n = 2, which is the honest answer).
    """
    a_arr, b_arr = _score_pair(a, b)
    confidence = _probability("confidence", confidence)
    d = a_arr - b_arr
    n, mean = int(d.size), float(d.mean())
    if n == 1:
        return PairedDifference(n, mean, None, None, None, None)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * se
    return PairedDifference(n, mean, sd, se, mean - half, mean + half)


def _paired_t_power(noncentrality: float, dof: int, t_crit: float) -> float:
    """Power of a two-sided t test: P(|Z + delta| > t_crit * S), S = chi_dof / sqrt(dof).

    Integrated directly because scipy's noncentral t returns NaN for large
    noncentrality at 1 degree of freedom (n = 2 seeds, the case we need most).
    """
    root = math.sqrt(dof)
    # log density of S = chi_dof / sqrt(dof), written out (scipy.stats calls are slow inside quad)
    log_const = math.log(root) - (dof / 2.0 - 1.0) * math.log(2.0) - math.lgamma(dof / 2.0)

    def normal_cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    def integrand(s: float) -> float:
        if s <= 0.0:
            return 0.0
        x = s * root
        density = math.exp(log_const + (dof - 1) * math.log(x) - x * x / 2.0)
        return (normal_cdf(noncentrality - t_crit * s) + normal_cdf(-noncentrality - t_crit * s)) * density

    return float(integrate.quad(integrand, 0.0, np.inf, limit=200)[0])


def minimal_detectable_difference(
    sd_difference: float | None, n: int, *, alpha: float = ALPHA, power: float = 0.8, exact: bool = True
) -> float | None:
    """Smallest true mean difference a two-sided paired t test with n pairs detects with this power.

    This is what an "inconclusive" check prints: differences smaller than it
    could easily have been missed by these seeds. With ``exact=False`` it is the
    textbook (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n); that shortcut
    ignores the noncentral t's shape and overstates power at tiny n (about 73 %
    instead of 80 % at n = 2, 77 % at n = 3), so by default the noncentrality
    giving exactly ``power`` is solved for, starting from the shortcut.
    None when there is no spread estimate (n < 2 or sd None).
    """
    alpha = _probability("alpha", alpha)
    power = _probability("power", power, low=alpha)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidParameterError("n", n, "a non-negative integer number of paired seeds")
    if sd_difference is None or n < 2:
        return None
    if not np.isfinite(sd_difference) or sd_difference < 0:
        raise InvalidParameterError("sd_difference", sd_difference, "a finite number >= 0, or None")
    return detectable_noncentrality(int(n) - 1, alpha=alpha, power=power, exact=exact) * sd_difference / math.sqrt(n)


def detectable_noncentrality(dof: int, *, alpha: float = ALPHA, power: float = 0.8, exact: bool = True) -> float:
    """The true difference, in standard errors, that a two-sided t test on ``dof`` degrees of freedom detects
    with this power (see :func:`minimal_detectable_difference` for ``exact``)."""
    t_crit = float(stats.t.ppf(1.0 - alpha / 2.0, dof))
    noncentrality = t_crit + float(stats.t.ppf(power, dof))
    if exact:
        high = noncentrality
        while _paired_t_power(high, dof, t_crit) < power:
            high *= 2.0
        noncentrality = optimize.brentq(lambda x: _paired_t_power(x, dof, t_crit) - power, 0.0, high, xtol=1e-10)
    return float(noncentrality)


def minimal_detectable_difference_images(
    p_discordant: float, n_images: int, *, alpha: float = ALPHA, power: float = 0.8
) -> float:
    """Smallest accuracy difference (points) McNemar detects on n_images with this power (normal approximation).

    The difference is (only_a - only_b) / n_images, whose standard error is
    about sqrt(p_discordant / n_images): only disagreeing images carry signal,
    so two networks that disagree rarely can be told apart at small differences.
    """
    alpha = _probability("alpha", alpha)
    power = _probability("power", power, low=alpha)
    is_number = isinstance(p_discordant, (int, float, np.floating)) and not isinstance(p_discordant, bool)
    if not is_number or not 0 <= p_discordant <= 1:
        raise InvalidParameterError("p_discordant", p_discordant, "a fraction in [0, 1]")
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise InvalidParameterError("n_images", n_images, "a positive integer")
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
    return z * math.sqrt(p_discordant / n_images) * 100.0


# --------------------------------------------------------------------------- checks and verdicts


@dataclass(frozen=True)
class Check:
    """One piece of evidence about a claim, with what it could have detected when it cannot tell."""

    statement: str
    outcome: str  # one of OUTCOMES
    detail: str
    detectable: float | None = None
    # The two-sided test at the 5 % level that decided the comparison of two methods (or could have:
    # 'paired t', 'pooled t', 'McNemar', 'bootstrap'); '' for checks that are not such a test (a number
    # against a paper's, an identity, a timing). The ledger counts these to say what chance alone would give.
    test: str = ""

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise InvalidParameterError("outcome", self.outcome, f"one of {OUTCOMES}")


def decide(checks: Sequence[Check]) -> str:
    """A claim's verdict from its checks, by the rule in the module docstring (one of VERDICTS)."""
    outcomes = set()
    for check in checks:
        if not isinstance(check, Check):
            raise InvalidParameterError("checks", check, "a sequence of Check")
        outcomes.add(check.outcome)
    if not outcomes:
        return "not tested here"
    if outcomes == {"supports"}:
        return "reproduced"
    if "supports" in outcomes:
        return "partly"
    if "contradicts" in outcomes:
        return "not reproduced"
    return "inconclusive at this budget"


def _signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def _two_significant(x: float) -> str:
    """1.1, 0.034, 14 -- never scientific notation, which readers of a verdict table trip over."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.{max(0, 1 - math.floor(math.log10(abs(x))))}f}"


def check_ranking(
    name_a: str,
    name_b: str,
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    *,
    correct_a=None,
    correct_b=None,
    claimed: str = "a>b",
    confidence: float = CONFIDENCE,
    n_images: int | None = None,
    images_a=None,
    images_b=None,
) -> Check:
    """Check a claim that one method beats the other, from paired per-seed scores (points).

    With two or more seeds the paired t interval decides: it supports the claim
    when it lies wholly on the claimed side of zero, contradicts it when it lies
    wholly on the other side, and is otherwise inconclusive, reporting the
    smallest difference these seeds could have detected. Per-image correctness
    of one seed pair, when given, adds McNemar's p-value to the detail; it only
    decides with a single seed (p < 0.05, then the sign decides), because it
    compares two networks, not two methods. For a score that is not an accuracy (ECE, a mean
    over corrupted versions) the per-image statistics ``images_a``/``images_b`` of one seed pair
    (``ImageMean``, ``BinnedCalibration``) play that role by a paired bootstrap over the images.
    """
    if claimed not in CLAIMS:
        raise InvalidParameterError("claimed", claimed, f"one of {CLAIMS}")
    if (correct_a is None) != (correct_b is None):
        missing = "correct_b" if correct_b is None else "correct_a"
        raise InvalidParameterError(missing, None, "given together with the other correctness array")
    paired = paired_seed_difference(scores_a, scores_b, confidence)
    sign = 1.0 if claimed == "a>b" else -1.0
    statement = f"{name_a} > {name_b}" if claimed == "a>b" else f"{name_b} > {name_a}"
    level = f"{100 * confidence:g}%"

    deciding_test = ""
    if paired.n >= 2:
        deciding_test = "paired t"
        detectable = minimal_detectable_difference(paired.sd_difference, paired.n, alpha=1.0 - confidence)
        low, high = sign * paired.ci_low, sign * paired.ci_high
        low, high = min(low, high), max(low, high)
        outcome = "supports" if low > 0 else "contradicts" if high < 0 else "inconclusive"
        detail = (
            f"{name_a} - {name_b} = {_signed(paired.mean_difference)} ± {paired.sd_difference:.2f} points "
            f"(mean ± sd over {paired.n} paired seeds, {level} CI [{paired.ci_low:.2f}, {paired.ci_high:.2f}]); "
            f"smallest detectable {_two_significant(detectable)} points"
        )
    else:
        outcome, detectable = "inconclusive", None
        detail = f"{name_a} - {name_b} = {_signed(paired.mean_difference)} points (1 seed, no spread estimate)"

    if correct_a is None and paired.n == 1 and n_images:
        bound = mcnemar_bound(round(scores_a[0] * n_images / 100), round(scores_b[0] * n_images / 100), n_images)
        detail += f"; McNemar p <= {bound:.2g} on {n_images} images (bound from the accuracies alone)"
        deciding_test = "McNemar"
        if bound < 1.0 - confidence and paired.mean_difference != 0:
            outcome = "supports" if sign * paired.mean_difference > 0 else "contradicts"
    if images_a is not None and paired.n == 1:
        outcome, detectable, detail = _bootstrap_outcome(images_a, images_b, sign, confidence, detail)
        deciding_test = "bootstrap"
    if correct_a is not None:
        test = mcnemar(correct_a, correct_b)
        detail += (
            f"; McNemar on one seed pair ({test.n_images} images): only {name_a} right {test.only_a}, "
            f"only {name_b} right {test.only_b}, p = {test.p_value:.2g}"
        )
        if paired.n == 1:
            deciding_test = "McNemar"
            detectable = minimal_detectable_difference_images(
                (test.only_a + test.only_b) / test.n_images, test.n_images, alpha=1.0 - confidence
            )
            if test.p_value < 1.0 - confidence and test.difference_points != 0:
                outcome = "supports" if sign * test.difference_points > 0 else "contradicts"
            else:
                detail += f"; smallest detectable {_two_significant(detectable)} points"
    return Check(statement=statement, outcome=outcome, detail=detail, detectable=detectable, test=deciding_test)


def _bootstrap_outcome(images_a, images_b, sign: float, confidence: float, detail: str):
    """(outcome, detectable, detail) of a one-seed check decided by a bootstrap over test images: paired where
    both networks stored per-image results, else each resampled on its own and paired the worst way."""
    if isinstance(images_a, PerImageStatistic) and isinstance(images_b, PerImageStatistic):
        boot, how = bootstrap_statistic_difference(images_a, images_b, confidence=confidence), "paired bootstrap"
    else:
        boot = worst_case_bootstrap_difference(images_a, images_b, confidence=confidence)
        how = "bootstrap from a reliability diagram (a run kept no per-image confidences; worst-case pairing)"
    detail += (f"; {how} over {boot.n_images} test images: {_signed(boot.difference)} points, "
               f"{100 * confidence:g}% interval [{boot.low:.2f}, {boot.high:.2f}]")
    if boot.low > 0 or boot.high < 0:
        return ("supports" if sign * boot.difference > 0 else "contradicts"), None, detail
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0) + stats.norm.ppf(0.8))
    detectable = z * boot.sd
    return "inconclusive", detectable, detail + f"; smallest detectable {_two_significant(detectable)} points"
