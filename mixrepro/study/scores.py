"""Our numbers: a run's scored top-1 or evaluation, summarised over seeds, beside the paper's."""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field, replace

from ..errors import InvalidParameterError, MixreproError
from ..results import NETWORKS
from .display import fmt, markdown_table
from .facts import scored_network
from .paper_tables import PaperTable


@dataclass(frozen=True)
class SeedStats:
    """Mean, sample standard deviation and standard error over seeds (std, se = 0 for one seed)."""

    values: tuple[float, ...]
    # Per seed, which test images the scored network got right (from the runs' predictions.json),
    # for paired per-image tests; empty where the runs stored no predictions.
    correct: tuple = field(default=(), compare=False, repr=False)
    # Test images each value was measured on, where known: with one seed and no per-image results,
    # a conservative McNemar bound from the accuracies alone can still decide (paired.mcnemar_bound).
    n_images: int | None = field(default=None, compare=False)
    # The seed of each value, where known: seed-paired checks compare two methods on the seeds
    # both have (a method with more evaluated seeds than another must not pair seed 1 with seed 0).
    seeds: tuple[int, ...] = field(default=(), compare=False)
    # Per seed, the value as a statistic a bootstrap over the test images can resample (ECE:
    # paired.BinnedCalibration from per-image confidences, or paired.DiagramCalibration from a stored
    # reliability diagram): a one-seed comparison of a score that is not an accuracy is decided by it.
    images: tuple = field(default=(), compare=False, repr=False)
    # The study's pooled seed spread of this metric and this method's arm in it (pooled.PoolMember), where
    # the pool covers the arm: a check of two methods in the same pool uses it (verdicts.check_order).
    pooled: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.seeds and len(self.seeds) != len(self.values):
            raise InvalidParameterError("seeds", self.seeds, f"one seed per value ({len(self.values)} values)")

    @classmethod
    def over_runs(cls, records, value_of, correct: tuple = (), n_images: int | None = None,
                  images: tuple = ()) -> "SeedStats":
        """One value per run (``value_of(record)``), labelled with each run's seed."""
        return cls(tuple(float(value_of(r)) for r in records), correct, n_images, seeds=run_seeds(records),
                   images=images)

    def on_seeds(self, seeds) -> "SeedStats":
        """The values of these seeds only, in the order given (per-image results follow them)."""
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise InvalidParameterError("seeds", self.seeds, "SeedStats that know their seeds, one value per seed "
                                        "(SeedStats.over_runs)")
        index = [self.seeds.index(s) for s in seeds]
        return SeedStats(tuple(self.values[i] for i in index),
                         tuple(self.correct[i] for i in index) if self.correct else (),
                         self.n_images, tuple(seeds), tuple(self.images[i] for i in index) if self.images else (),
                         self.pooled)

    def network(self, seed: int) -> "SeedStats":
        """The network of one seed as a one-value SeedStats that does not name its seed, so a check can
        compare it with another method's network of a different seed (per image, on the same test set)."""
        one = self.on_seeds((seed,))
        return SeedStats(one.values, one.correct, one.n_images, (), one.images)

    @classmethod
    def constant(cls, value: float, like: "SeedStats") -> "SeedStats":
        """A fixed threshold with ``like``'s seeds, so a seed-paired check tests ``like``'s values against it
        (a one-value constant would not pair with three seeds)."""
        return cls((float(value),) * like.n, seeds=like.seeds)

    def shares_seeds(self, other: "SeedStats") -> bool:
        """Whether a seed-paired check of the two has seeds to pair: one both have (where both know their
        seeds; e.g. a one-seed ablation arm against the three-seed study run), else as many values."""
        if self.seeds and other.seeds:
            return bool(set(self.seeds) & set(other.seeds))
        return self.n == other.n

    def paired_with(self, other: "SeedStats") -> tuple["SeedStats", "SeedStats"]:
        """Both restricted to the seeds they share (in this one's order), for seed-paired checks.

        Where either side does not know its seeds, both are returned unchanged: the caller then
        vouches that the values are in the same seed order (and a length mismatch is an error).
        """
        if not self.seeds or not other.seeds or self.seeds == other.seeds:
            return self, other
        common = [s for s in self.seeds if s in other.seeds]
        if not common:
            raise InvalidParameterError("seeds", (self.seeds, other.seeds), "at least one seed both methods have")
        return self.on_seeds(common), other.on_seeds(common)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n)

    def text(self, digits: int = 2) -> str:
        """'mean ± std (n=…)'; one seed shows the value alone."""
        if self.n == 1:
            return f"{self.mean:.{digits}f} (1 seed)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


def run_seeds(records) -> tuple[int, ...]:
    """The seed of each run, in order (what SeedStats pairs on)."""
    return tuple(int(r.config.seed) for r in records)


def run_top1(record, network: str, rule: str = "median_last10") -> float:
    """A run's scored top-1 (%) from its summary; the paper's rule by default."""
    if network not in NETWORKS:
        raise InvalidParameterError("network", network, f"one of {NETWORKS}")
    return float(record.summary[network][rule])


def key_path(key: str | tuple[str, ...]) -> tuple[str, ...]:
    """A key of an evaluation's result as a path: 'fgsm_error' -> ('fgsm_error',); ('top1', '0.5') as is."""
    return key if isinstance(key, tuple) else (key,)


def run_evaluation(record, name: str, key: str | tuple[str, ...], network: str) -> float:
    """One number of a stored evaluation, e.g. ``run_evaluation(r, 'fgsm', 'fgsm_error', 'ema')``; a nested
    one by a path, e.g. ``run_evaluation(r, 'occlusion', ('top1', '0.5'), 'ema')``."""
    try:
        value = record.evaluations[network][name]
        for part in key_path(key):
            value = value[part]
        return float(value)
    except KeyError:
        raise MixreproError(f"run {record.config.key()} has no evaluation {name}/{'/'.join(key_path(key))} for "
                            f"the {network} network; pass evaluations=(...) to train_or_load") from None


def scored_stats(runs: dict, value_of=None) -> dict[str, SeedStats]:
    """{method: SeedStats} of the paper's score (median top-1 of the last 10 epochs, the scored network),
    with the scored network's per-image results where every run stored them."""
    if value_of is not None:
        return {m: SeedStats.over_runs(records, lambda r, m=m: value_of(r, m)) for m, records in runs.items()}
    stats = {m: SeedStats.over_runs(records, scored_top1, per_image_correct(records, scored_network(m)))
             for m, records in runs.items()}
    return with_study_pool(stats, runs, SCORED_TOP1, scored_top1)


SCORED_TOP1 = "top-1 of the scored network"  # the metric's name in the study's pools


def scored_top1(record) -> float:
    """A run's top-1 by the paper's rule, of the network the paper scores for its method."""
    return run_top1(record, scored_network(record.config.method))


def with_study_pool(stats: dict[str, SeedStats], runs: dict, metric: str, value_of) -> dict[str, SeedStats]:
    """``stats`` with the study's pooled seed spread of ``metric`` (``value_of(record)``) on every method
    whose runs are all the study plan's and whose arm the pool covers (``pooled.study_pool``); the others
    (an ablation arm, another budget) are left as they are and compared by the per-pair rule."""
    from ..plans import in_study_plan
    from .pooled import PoolMember, arm_of, study_pool

    in_plan = {m: records for m, records in runs.items()
               if m in stats and records and all(in_study_plan(r.config) for r in records)}
    pool = study_pool(next(iter(in_plan.values())), metric, value_of) if in_plan else None
    if pool is None:
        return stats
    arms = {m: arm_of(records[0]) for m, records in in_plan.items()}
    return {m: replace(s, pooled=PoolMember(pool, arms[m])) if m in arms and pool.covers(arms[m]) else s
            for m, s in stats.items()}


def per_image_correct(records, network: str) -> tuple:
    """Per run, a boolean array over the shared test images; () unless every run stored its predictions."""
    from ..evaluate.predictions import correct_per_image

    if not records or not all(r.predictions for r in records):
        return ()
    return tuple(correct_per_image(r.predictions, network) for r in records)


# Evaluation numbers that are a percentage of the run's test images (one network, each image counted
# once): two networks' values can be compared by McNemar's bound from the percentages alone.
PERCENT_OF_TEST_IMAGES = {("fgsm", "fgsm_error"), ("fgsm", "fgsm_top1"), ("fgsm", "clean_top1")}
# Percentages of a count the evaluation stores itself: mixed-sample accuracy over its n mixed images and
# occlusion top-1 (per ratio) over its images, which are the same for every network of one seed (pairs,
# lambdas, the image subset and the patches come from the evaluation's seeded generator, not from the
# network), so the same bound applies. The corruption mean (60 sets of the same images) is not one.
PERCENT_OF_STORED_COUNT = {("mixed_accuracy", "top1"): "n", ("mixed_accuracy", "top2"): "n",
                           ("occlusion", "top1"): "images"}


def evaluated_images(record, name: str, key: str | tuple[str, ...], network: str) -> int | None:
    """How many images a stored percentage counts each once, where that is known; else None."""
    head = (name, key_path(key)[0])
    if head in PERCENT_OF_TEST_IMAGES:
        return test_images(record.config)
    if head in PERCENT_OF_STORED_COUNT:
        count = record.evaluations[network][name].get(PERCENT_OF_STORED_COUNT[head])
        return None if count is None else int(count)  # older results did not store it
    return None


def evaluation_stats(runs: dict, name: str, key: str | tuple[str, ...],
                     network: str | None = None) -> dict[str, SeedStats]:
    """{method: SeedStats} of one stored evaluation number (``key``: a name, or a path into a nested
    result), on the scored network unless ``network``.

    For a percentage of images each counted once (FGSM error and accuracy, mixed-sample accuracy,
    occlusion top-1) the stats carry that number of images, so a one-seed comparison can use
    ``paired.mcnemar_bound``.
    """
    stats = {}
    for method, records in runs.items():
        net = network or scored_network(method)
        images = {evaluated_images(r, name, key, net) for r in records}
        stats[method] = SeedStats.over_runs(records, lambda r, net=net: run_evaluation(r, name, key, net),
                                            n_images=images.pop() if len(images) == 1 else None,
                                            images=per_image_statistics(records, name, key, net))
    label = f"{name} {'/'.join(key_path(key))} of the {network or 'scored'} network"
    return with_study_pool(stats, runs, label,
                           lambda r: run_evaluation(r, name, key, network or scored_network(r.config.method)))


def ece_bins(name: str, key: str | tuple[str, ...]) -> int | None:
    """The bin count of a stored ECE number ('ece', 'ece_percent_15bins' -> 15); None for anything else."""
    path = key_path(key)
    if name != "ece" or len(path) != 1:
        return None
    match = re.fullmatch(r"ece_percent_(\d+)bins", path[0])
    return int(match.group(1)) if match else None


def per_image_statistics(records, name: str, key: str | tuple[str, ...], network: str) -> tuple:
    """Per run, the stored ECE number as a statistic a bootstrap can resample: ``paired.BinnedCalibration``
    from the run's 'confidence' evaluation (per-image confidences), else ``paired.DiagramCalibration`` from
    its stored reliability diagram; () for anything but an ECE number or where a run has neither. Either
    must give back the stored ECE: otherwise they are not the same network's (or the same test images'),
    and the study stops."""
    bins = ece_bins(name, key)
    if bins is None or not records:
        return ()
    found = tuple(_ece_statistic(record, name, key, network, bins) for record in records)
    return () if None in found else found


def _ece_statistic(record, name: str, key, network: str, bins: int):
    from ..evaluate.predictions import decode_confidence
    from .paired import BinnedCalibration, DiagramCalibration

    stored_results = record.evaluations[network]
    diagram = stored_results[name].get(f"reliability_{bins}bins")
    if "confidence" in stored_results:
        statistic = BinnedCalibration.from_images(*decode_confidence(stored_results["confidence"]), bins)
    elif diagram is not None:
        statistic = DiagramCalibration.from_diagram(diagram)
    else:
        return None
    stored = run_evaluation(record, name, key, network)
    if abs(statistic.value() - stored) > ECE_TOLERANCE_POINTS:
        raise MixreproError(f"run {record.config.key()}: the {network} network's ECE from its stored "
                            f"{type(statistic).__name__} is {statistic.value():.6f}, its stored ECE {stored:.6f}; "
                            f"re-run its 'ece' and 'confidence' evaluations")
    return statistic


# float32 confidences against the float64 ECE: far below the 0.01 points the book prints.
ECE_TOLERANCE_POINTS = 1e-3


def test_images(config) -> int:
    """How many test images a run of ``config`` is scored on."""
    from ..data import DATASETS

    return config.test_subset or DATASETS.get(config.dataset).num_test


def confidence_gap(ece_result: dict, n_bins: int = 10) -> float:
    """Mean confidence minus accuracy in points (positive: over-confident), from a stored 'ece' evaluation."""
    diagram = ece_result[f"reliability_{n_bins}bins"]
    total = sum(diagram["count"])
    signed = sum(n * (conf - acc) for n, conf, acc in zip(diagram["count"], diagram["confidence"], diagram["accuracy"])
                 if n)
    return 100.0 * signed / total


def comparison_markdown(table: PaperTable, column: str, runs: dict, value_of=None, digits: int = 2,
                        paper_label: str | None = None) -> str:
    """Paper column beside ours (online, EMA, and the network the paper scores), mean ± std over seeds."""
    value_of = value_of or (lambda record, network: run_top1(record, network))
    rows = []
    for method in list(dict.fromkeys([m for m in table.rows if m in runs] + list(runs))):
        stats = {net: SeedStats.over_runs(runs[method], lambda r, net=net: value_of(r, net)) for net in NETWORKS}
        rows.append([table.label(method), fmt(table.value(method, column), table.digits), stats["online"].text(digits),
                     stats["ema"].text(digits), scored_network(method)])
    header = [paper_label or f"paper ({table.columns[column]['label']})", "ours: online", "ours: EMA",
              "paper scores"]
    return markdown_table(["method"] + header, rows)
