"""Our numbers: a run's scored top-1 or evaluation, summarised over seeds, beside the paper's."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

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


def run_top1(record, network: str, rule: str = "median_last10") -> float:
    """A run's scored top-1 (%) from its summary; the paper's rule by default."""
    if network not in NETWORKS:
        raise InvalidParameterError("network", network, f"one of {NETWORKS}")
    return float(record.summary[network][rule])


def run_evaluation(record, name: str, key: str, network: str) -> float:
    """One number of a stored evaluation, e.g. ``run_evaluation(r, 'fgsm', 'fgsm_error', 'ema')``."""
    try:
        return float(record.evaluations[network][name][key])
    except KeyError:
        raise MixreproError(f"run {record.config.key()} has no evaluation {name}/{key} for the {network} "
                            "network; pass evaluations=(...) to train_or_load") from None


def scored_stats(runs: dict, value_of=None) -> dict[str, SeedStats]:
    """{method: SeedStats} of the paper's score (median top-1 of the last 10 epochs, the scored network),
    with the scored network's per-image results where every run stored them."""
    if value_of is not None:
        return {m: SeedStats(tuple(float(value_of(r, m)) for r in records)) for m, records in runs.items()}
    return {m: SeedStats(tuple(run_top1(r, scored_network(m)) for r in records),
                         per_image_correct(records, scored_network(m)))
            for m, records in runs.items()}


def per_image_correct(records, network: str) -> tuple:
    """Per run, a boolean array over the shared test images; () unless every run stored its predictions."""
    from ..evaluate.predictions import correct_per_image

    if not records or not all(r.predictions for r in records):
        return ()
    return tuple(correct_per_image(r.predictions, network) for r in records)


def evaluation_stats(runs: dict, name: str, key: str, network: str | None = None) -> dict[str, SeedStats]:
    """{method: SeedStats} of one stored evaluation number, on the scored network unless ``network``."""
    return scored_stats(runs, lambda r, m: run_evaluation(r, name, key, network or scored_network(m)))


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
        stats = {net: SeedStats(tuple(float(value_of(r, net)) for r in runs[method])) for net in NETWORKS}
        rows.append([table.label(method), fmt(table.value(method, column), table.digits), stats["online"].text(digits),
                     stats["ema"].text(digits), scored_network(method)])
    header = [paper_label or f"paper ({table.columns[column]['label']})", "ours: online", "ours: EMA",
              "paper scores"]
    return markdown_table(["method"] + header, rows)
