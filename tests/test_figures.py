"""The study's figures: paper beside ours in each method's fixed colour; curves of sparsely scored runs."""
from __future__ import annotations

from types import SimpleNamespace

from matplotlib.colors import to_hex

from mixrepro import study
from mixrepro.study.figures import FIGURE_DPI, plot_paper_vs_ours, plot_top1_curves


def test_paper_vs_ours_draws_each_method_in_its_colour_with_every_seed():
    table = study.load_paper_table("automix_table1")
    stats = {"vanilla": study.SeedStats((79.4, 80.1)), "automix": study.SeedStats((81.0, 80.2, 80.6))}
    fig = plot_paper_vs_ours(table, "c10_r18", stats)
    paper_ax, ours_ax = fig.axes
    assert fig.dpi == FIGURE_DPI >= 150
    bar_colors = {to_hex(p.get_facecolor()) for p in paper_ax.patches}
    assert study.method_color("automix") in bar_colors and study.method_color("vanilla") in bar_colors
    seed_dots = sum(len(c.get_offsets()) for c in ours_ax.collections)
    assert seed_dots >= 5  # every seed drawn (plus the means)
    assert ours_ax.get_xlabel() == "top-1 (%)"


def test_top1_curves_skip_epochs_without_a_test_score():
    rows = [{"online_top1": None, "ema_top1": None}, {"online_top1": 50.0, "ema_top1": 40.0},
            {"online_top1": None, "ema_top1": None}, {"online_top1": 60.0, "ema_top1": 55.0}]
    record = SimpleNamespace(curve=lambda column: [r[column] for r in rows])
    fig = plot_top1_curves({"mixup": [record]})
    online = fig.axes[0].lines[0]
    assert list(online.get_xdata()) == [2, 4] and list(online.get_ydata()) == [50.0, 60.0]


def test_paper_table_figure_has_a_panel_per_column_in_method_colours():
    from matplotlib.colors import to_hex

    from mixrepro.study import load_paper_table
    from mixrepro.study.facts import method_color
    from mixrepro.study.figures import plot_paper_table

    table = load_paper_table("automix_table5")  # 10 columns: three rows of four panels, two hidden
    fig = plot_paper_table(table)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 12 and len(visible) == len(table.columns) == 10
    first = visible[0]
    column = next(iter(table.columns))
    dots = {to_hex(line.get_color()): line.get_xdata()[0] for line in first.get_lines()}
    assert dots[to_hex(method_color("automix"))] == table.value("automix", column)
    assert [t.get_text() for t in first.get_yticklabels()][0] == table.label(next(iter(table.rows)))


def png_bytes(fig) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_seed_dots_give_the_same_figure_whatever_numpy_global_state_the_caller_left():
    import numpy as np

    table = study.load_paper_table("automix_table1")
    stats = {"vanilla": study.SeedStats((79.4, 80.1, 79.9)), "automix": study.SeedStats((81.0, 80.2, 80.6))}
    np.random.seed(1)
    first = png_bytes(plot_paper_vs_ours(table, "c10_r18", stats))
    np.random.seed(2)
    after = np.random.get_state()[1].copy()
    second = png_bytes(plot_paper_vs_ours(table, "c10_r18", stats))
    assert first == second  # stripplot's jitter no longer follows numpy's global generator
    assert np.array_equal(np.random.get_state()[1], after)  # and the caller's generator is left as it was


def test_reliability_diagrams_wrap_at_four_per_row_and_title_the_signed_gap():
    from mixrepro.study.figures import plot_reliability

    def ece_run(confidence):  # all 100 images in the bin [0.5, 0.6), 80 of them right
        diagram = {"bin_lower": [i / 10 for i in range(10)], "bin_upper": [(i + 1) / 10 for i in range(10)],
                   "accuracy": [None] * 5 + [0.8] + [None] * 4, "confidence": [None] * 5 + [confidence] + [None] * 4,
                   "count": [0] * 5 + [100] + [0] * 4}
        ece = {"reliability_10bins": diagram, "ece_percent_10bins": 100 * abs(confidence - 0.8)}
        return [SimpleNamespace(evaluations={"online": {"ece": ece}, "ema": {"ece": ece}})]

    methods = ["vanilla", "mixup", "cutmix", "fmix", "puzzlemix", "adautomix"]
    fig = plot_reliability({m: ece_run(0.55) for m in methods})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 8 and len(visible) == 6
    assert visible[-1].get_title() == "adautomix\nECE 25.0%, conf − acc -25.0"
    share = visible[0].lines[1]  # the grey steps: every image in one bin
    assert max(share.get_ydata()) == 1.0 and sum(share.get_ydata()) == 1.0
