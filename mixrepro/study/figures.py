"""The study's figures, built on matplotlib's pyplot-free Figure (no global backend state)."""
from __future__ import annotations

import contextlib
import math
import statistics

from .facts import method_color, scored_network
from .paper_tables import PaperTable
from .scores import SeedStats, confidence_gap


FIGURE_DPI = 150  # sharp at the book's page width (about 7 inches of figure at 150 dpi)


def new_figure(width: float = 6.0, height: float = 3.2, ncols: int = 1, nrows: int = 1):
    """A pyplot-free Figure in the seaborn theme: no global backend state, nothing shown until glued."""
    import seaborn as sns
    from matplotlib.figure import Figure

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig = Figure(figsize=(width, height), dpi=FIGURE_DPI)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()  # row by row
    return fig, axes


def seed_dots(ax, frame, seed: int = 0, **stripplot_options) -> None:
    """seaborn's stripplot on ``ax``, its jitter drawn from a fixed seed: stripplot jitters with numpy's
    global generator, so without this a page's figure changed bytes on every execution of the same runs."""
    import seaborn as sns

    with fixed_numpy_global_seed(seed):
        sns.stripplot(frame, ax=ax, **stripplot_options)


@contextlib.contextmanager
def fixed_numpy_global_seed(seed: int):
    """numpy's global generator seeded for the block, the caller's state restored after it."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def label_axes(ax, xlabel: str, ylabel: str = "test top-1 (%)", legend_size: int = 6) -> None:
    """Axis labels, and a legend once something is drawn (an empty page's axes stay legend-free)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.has_data():
        ax.legend(fontsize=legend_size)


def seed_mean_curve(records, column: str) -> list[tuple[int, float]]:
    """(epoch, mean over seeds) of an epochs.csv column at the epochs every seed scored (runs score the test
    set sparsely before their last epochs)."""
    curves = [r.curve(column) for r in records]
    return [(epoch, statistics.fmean(values)) for epoch, values in enumerate(zip(*curves), start=1)
            if all(v is not None for v in values)]


def plot_top1_curves(runs: dict, table: PaperTable | None = None):
    """Test top-1 per epoch of each method (seed mean): online solid, EMA dashed."""
    fig, (ax,) = new_figure()
    for method, records in runs.items():
        color = method_color(method)
        for network, style in (("online", "-"), ("ema", "--")):
            points = seed_mean_curve(records, f"{network}_top1")
            label = (table.label(method) if table else method) if network == "online" else None
            if points:
                ax.plot(*zip(*points), style, color=color, marker=".", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("solid: online network, dashed: EMA network", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


RELIABILITY_COLUMNS = 4  # panels per row: wide enough to read a bin at the book's page width


def plot_reliability(runs: dict, n_bins: int = 10, table: PaperTable | None = None):
    """Reliability diagrams (seed 0, the scored network), up to four per row: bars the accuracy per
    confidence bin, dots the mean confidence, dashed steps the share of test images in each bin (where the
    predictions sit), each titled with its ECE and signed gap mean confidence - accuracy."""
    methods = list(runs)
    ncols = min(len(methods), RELIABILITY_COLUMNS)
    nrows = math.ceil(len(methods) / ncols)
    fig, axes = new_figure(width=2.6 * ncols, height=2.5 * nrows, ncols=ncols, nrows=nrows)
    for ax, method in zip(axes, methods):
        result = runs[method][0].evaluations[scored_network(method)]["ece"]
        _reliability_panel(ax, result, n_bins)
        label = table.label(method) if table else method
        ax.set_title(f"{label}\nECE {result[f'ece_percent_{n_bins}bins']:.1f}%, "
                     f"conf − acc {confidence_gap(result, n_bins):+.1f}", fontsize=8)
    for ax in axes[len(methods):]:
        ax.set_visible(False)
    for row in range(nrows):
        axes[row * ncols].set_ylabel("accuracy", fontsize=8)
    axes[0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def _reliability_panel(ax, result: dict, n_bins: int) -> None:
    diagram = result[f"reliability_{n_bins}bins"]
    centres = [(lo + hi) / 2 for lo, hi in zip(diagram["bin_lower"], diagram["bin_upper"])]
    accuracy = [a if a is not None else 0.0 for a in diagram["accuracy"]]
    ax.bar(centres, accuracy, width=1 / n_bins, color="C0", alpha=0.55, edgecolor="k", linewidth=0.5,
           label="accuracy")
    confidence = [(c, v) for c, v in zip(centres, diagram["confidence"]) if v is not None]
    ax.plot([c for c, _ in confidence], [v for _, v in confidence], "o", color="C1", ms=3, label="confidence")
    total = sum(diagram["count"])
    ax.step(centres, [n / total for n in diagram["count"]], where="mid", color="k", lw=1.3, ls="--",
            label="share of images")
    ax.plot([0, 1], [0, 1], "r-", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence", fontsize=7)
    ax.tick_params(labelsize=7)


def plot_accuracy_vs_fgsm(clean: dict[str, SeedStats], fgsm_error: dict[str, SeedStats],
                          table: PaperTable | None = None, paper_columns: tuple[str, str] | None = None):
    """Clean top-1 against FGSM error: ours (filled) and, when given, the paper's (hollow)."""
    fig, axes = new_figure(width=8 if paper_columns else 4.5, height=3.2, ncols=2 if paper_columns else 1)
    for method in clean:
        axes[0].errorbar(clean[method].mean, fgsm_error[method].mean, xerr=clean[method].std,
                         yerr=fgsm_error[method].std, fmt="o", color=method_color(method),
                         label=table.label(method) if table else method)
    axes[0].set_title("ours", fontsize=9)
    if paper_columns:
        acc_col, err_col = paper_columns
        for method in table.rows:
            axes[1].plot(table.value(method, acc_col), table.value(method, err_col), "o", mfc="none",
                         color=method_color(method), label=table.label(method))
        axes[1].set_title(f"paper ({table.table})", fontsize=9)
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("clean top-1 (%)")
        ax.set_ylabel("FGSM error (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_paper_vs_ours(table: PaperTable, column: str, stats: dict[str, SeedStats], quantity: str = "top-1 (%)"):
    """Two panels on their own scales: the paper's number per method, and ours (mean, error bar = sd
    over seeds, each seed a dot); one fixed colour per method (its ``color`` attribute)."""
    import pandas as pd
    import seaborn as sns

    methods = [m for m in table.rows if m in stats or table.value(m, column) is not None]
    palette = {table.label(m): method_color(m) for m in methods}
    paper = pd.DataFrame([{"method": table.label(m), "value": table.value(m, column)} for m in methods
                          if table.value(m, column) is not None])
    ours = pd.DataFrame([{"method": table.label(m), "value": v} for m in methods if m in stats
                         for v in stats[m].values])
    fig, (left, right) = new_figure(width=7.0, height=0.35 * len(methods) + 1.2, ncols=2)
    order = [table.label(m) for m in methods]
    if not paper.empty:
        sns.barplot(paper, x="value", y="method", hue="method", palette=palette, order=order, ax=left, legend=False,
                    saturation=1.0)  # the exact method colours, not seaborn's desaturated ones
        left.set_xlim(paper["value"].min() - 2, paper["value"].max() + 1)
    left.set(title=f"paper ({table.columns[column].get('label', column)})", xlabel=quantity, ylabel="")
    if not ours.empty:
        sns.pointplot(ours, x="value", y="method", hue="method", palette=palette, order=order, ax=right,
                      errorbar="sd", linestyle="none", legend=False)
        seed_dots(right, ours, x="value", y="method", hue="method", palette=palette, order=order, size=3, alpha=0.5,
                  legend=False)
    right.set(title="ours: mean ± sd, dots = seeds", xlabel=quantity, ylabel="")
    right.tick_params(labelleft=False)
    fig.tight_layout()
    return fig


def plot_paper_table(table: PaperTable, columns=None, quantity: str = "top-1 (%)", per_row: int = 4):
    """The paper's table as a figure: one panel per column (its own scale), each method a dot in its
    fixed colour, so a reader sees the ranking in every column at a glance. For tables this study
    cannot rerun (data or model absent) it is the page's only figure."""
    columns = [c for c in (columns or table.columns) if any(table.value(m, c) is not None for m in table.rows)]
    methods = [m for m in table.rows if any(table.value(m, c) is not None for c in columns)]
    ncols = max(min(per_row, len(columns)), 1)
    nrows = max(math.ceil(len(columns) / ncols), 1)
    fig, axes = new_figure(width=min(2.3 * ncols + 1.4, 10.0), height=(0.28 * len(methods) + 1.0) * nrows,
                           ncols=ncols, nrows=nrows)
    labels = [table.label(m) for m in methods]
    for index, ax in enumerate(axes):
        if index >= len(columns):
            ax.set_visible(False)
            continue
        column = columns[index]
        for y, method in enumerate(methods):
            value = table.value(method, column)
            if value is not None:
                ax.plot([value], [y], "o", color=method_color(method))
        ax.set_yticks(range(len(methods)), labels if index % ncols == 0 else [""] * len(methods))
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_title(table.columns[column].get("label", column), fontsize=8)
        ax.set_xlabel(quantity, fontsize=7)
    fig.tight_layout()
    return fig
