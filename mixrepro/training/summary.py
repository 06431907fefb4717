"""summary.json of a run: the reported scores of each network from its per-epoch test scores, and costs."""
from __future__ import annotations

from ..evaluate.accuracy import score_last_epochs
from ..results import NETWORKS


def build_summary(epochs: list[dict], *, train_time_s: float, wall_time_s: float, dataset_label: str) -> dict:
    """summary.json: per network the scores of mixrepro.evaluate.score_last_epochs, plus costs."""
    summary = {"epochs": len(epochs), "dataset_label": dataset_label}
    for net in NETWORKS:
        scored = [row for row in epochs if row.get(f"{net}_top1") is not None]  # scored epochs only
        top1 = [row[f"{net}_top1"] for row in scored]
        scores = score_last_epochs(top1)
        scores["best_epoch"] = scored[top1.index(max(top1))]["epoch"]
        scores["final_top5"] = scored[-1].get(f"{net}_top5")  # None below 5 classes
        summary[net] = scores
    images = sum(row["train_images"] for row in epochs)
    summary.update(
        wall_time_s=wall_time_s,
        train_time_s=train_time_s,
        train_images_per_s=images / train_time_s if train_time_s > 0 else None,
    )
    return summary
