"""The AutoMix pages' shared pieces (mixrepro.study.automix_pages): the paper's arithmetic, reasons for what is
not tested, bench checks, the Mix Block's logged mask statistics and stored mixed-sample snapshots."""
from __future__ import annotations

import dataclasses
import base64
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mixrepro import study
from mixrepro.config import RunConfig
from mixrepro.errors import InvalidParameterError
from mixrepro.study import automix_pages as pages

AUTOMIX_TABLES = ["automix_table2", "automix_table3", "automix_table4", "automix_table5", "automix_table8",
                  "automix_table9", "automix_table10", "automix_table14"]
AUTOMIX_FIGURES = ["automix_fig1", "automix_fig4", "automix_fig6", "automix_figs7_12_13", "automix_fig9"]


# ----------------------------------------------------------------------------- transcriptions and arithmetic


@pytest.mark.parametrize("name", AUTOMIX_TABLES + AUTOMIX_FIGURES)
def test_transcriptions_load_and_their_extras_name_existing_cells(name):
    table = study.load_paper_table(name)
    extras = pages.table_extras(name)
    assert table.paper_key == "liu2022automix" and table.caption
    for spec in extras.get("quoted", []):
        for term in spec.get("terms", []):
            assert table.value(term[1], term[2]) is not None and table.value(term[0], term[2]) is not None, term
        for column in spec.get("gain_columns", []):
            assert column in table.printed_gain
    for spec in extras.get("same_cells", []):
        other = study.load_paper_table(spec["other"])
        for method, column, other_method, other_column in spec["pairs"]:
            assert column in table.columns and other_column in other.columns
    assert set(extras.get("printed_gain_inconsistent", {})) <= set(table.printed_gain)


@pytest.mark.parametrize("name", ["automix_table2", "automix_table3", "automix_table4", "automix_table5",
                                  "automix_table14"])
def test_gain_row_agrees_except_where_the_transcription_documents_the_paper_disagreeing(name):
    table = study.load_paper_table(name)
    inconsistent = pages.table_extras(name).get("printed_gain_inconsistent", {})
    for column, check in zip(table.printed_gain, pages.gain_row_checks(table)):
        assert check.outcome == ("contradicts" if column in inconsistent else "supports"), check


def test_quoted_numbers_find_the_papers_slips():
    outcomes = {c.statement: c.outcome for c in pages.quoted_checks(study.load_paper_table("automix_table5"))}
    wrong = [s for s, o in outcomes.items() if o == "contradicts"]
    assert len(outcomes) == 8 and len(wrong) == 1 and "= 2.74" in wrong[0]  # iNat2017 R-50: the cells give 2.85
    table2 = {c.statement: c for c in pages.quoted_checks(study.load_paper_table("automix_table2"))}
    assert [c.outcome for c in table2.values()] == ["supports", "supports", "contradicts", "supports"]
    table4 = [c.outcome for c in pages.quoted_checks(study.load_paper_table("automix_table4"))]
    assert table4 == ["supports", "contradicts"]  # the paragraph's two ranges: 0.18~0.98 and 0.12~0.98


def test_same_cells_name_the_cells_that_differ():
    table9 = pages.same_cell_checks(study.load_paper_table("automix_table9"))
    assert [c.outcome for c in table9] == ["supports"]
    t14 = {c.statement: c for c in pages.same_cell_checks(study.load_paper_table("automix_table14"))}
    table6 = next(c for s, c in t14.items() if "Table 6" in s)
    assert table6.outcome == "contradicts" and table6.detail.startswith("1 of 5 cells equal")
    assert "CutMix RX-50 400ep 78.52 vs 81.09" in table6.detail


def test_within_rounding_uses_the_printed_precision():
    assert pages.within_rounding(0.384, "0.38") and not pages.within_rounding(0.386, "0.38")
    assert pages.within_rounding(3.89, "4") and not pages.within_rounding(3.4, "4")


def test_arithmetic_verdict_is_a_derivation_decided_at_any_budget():
    verdict = pages.arithmetic_verdict("X", study.load_paper_table("automix_table9"), "smoke")
    assert verdict.kind == "derivation" and verdict.verdict == "reproduced"
    assert "Gain row" not in verdict.claim and "quoted numbers" in verdict.claim


def test_length_trends_and_winner_cells_read_the_table():
    t14 = study.load_paper_table("automix_table14")
    assert [c.outcome for c in pages.length_trend_checks(t14, "cutmix", decays=True)] == ["supports", "supports"]
    # ManifoldMix gains from 1200 epochs with RX-50 (83.28) but not with R-18 (80.21 < 80.35 at 800)
    assert [c.outcome for c in pages.length_trend_checks(t14, "manifoldmix", decays=False)] == \
        ["contradicts", "supports"]
    assert all(c.outcome == "supports" for c in pages.winner_cell_checks(study.load_paper_table("automix_table8")))


# ----------------------------------------------------------------------------- what is not tested, and why


def test_absent_reason_tells_unloadable_from_missing_data():
    text = pages.absent_reason(["imagenet", "cub200"], "lots")
    assert "ImageNet-1k is not among the datasets" in text and "no runs on CUB-200-2011 are stored" in text
    assert text.endswith("At the paper's protocol: lots")


# ----------------------------------------------------------------------------- bench


def _report(**steps):
    rows = [{"method": m, "method_params": {}, "step_seconds": list(s), "seconds_per_step": float(np.median(s)),
             "ratio_to_vanilla": 1.0, "images_per_s": 100.0} for m, s in steps.items()]
    return {"rows": rows}


def test_step_time_check_is_a_welch_interval():
    fast, slow = [0.10, 0.11, 0.09, 0.10, 0.11, 0.10], [0.30, 0.31, 0.29, 0.32, 0.30, 0.31]
    report = _report(mixup=fast, automix=slow, puzzlemix=[0.1, 0.5, 0.2, 0.6, 0.15, 0.45])
    assert pages.step_time_check(report, "automix", "mixup", faster=False).outcome == "supports"
    assert pages.step_time_check(report, "automix", "mixup", faster=True).outcome == "contradicts"
    unsure = pages.step_time_check(report, "automix", "puzzlemix", faster=True)
    assert unsure.outcome == "inconclusive" and "interval" in unsure.detail
    with pytest.raises(InvalidParameterError):
        pages.step_time_check(report, "automix", "samix", faster=True)


def test_a_newer_report_of_a_few_rows_does_not_hide_the_full_table(tmp_path):
    folder = tmp_path / "bench" / "cpu"
    folder.mkdir(parents=True)
    full = {"rows": [{"method": m} for m in ("vanilla", "mixup", "adautomix")]}
    few = {"rows": [{"method": m} for m in ("vanilla", "adautomix", "adautomix[num_sources=2]")]}
    (folder / "20261201T000000Z-a.json").write_text(json.dumps(full))
    (folder / "20261202T000000Z-b.json").write_text(json.dumps(few))
    assert pages.latest_bench_report(tmp_path)[0].name.endswith("-b.json")  # the newest that has the rows
    assert pages.latest_bench_report(tmp_path, ["vanilla", "mixup"])[1] == full
    assert pages.latest_bench_report(tmp_path, ["adautomix[num_sources=2]"])[1] == few
    with pytest.raises(InvalidParameterError, match="that times samix"):
        pages.latest_bench_report(tmp_path, ["samix"])


def test_committed_bench_report_has_the_rows_fig1_compares():
    _, report = pages.latest_bench_report(study.PAPER_NUMBERS_DIR.parent.parent / "notebooks" / "results",
                                          ["vanilla", "mixup", "cutmix", "puzzlemix", "automix"])
    rows = pages.bench_rows(report)
    assert {"vanilla", "mixup", "cutmix", "puzzlemix", "automix"} <= set(rows)
    assert "automix+dm_ce" not in rows  # loss variants are left out


# ----------------------------------------------------------------------------- the Mix Block's logs


def _record(seed, stds, gaps, epochs=None):
    rows = [{"epoch": i + 1, "mask_std_gen": s, "mask_mean_gap_gen": g} for i, (s, g) in enumerate(zip(stds, gaps))]
    config = RunConfig(method="automix", seed=seed, epochs=epochs or len(rows))
    return SimpleNamespace(epochs=rows, config=config, summary={})


def test_mask_statistics_from_the_logs():
    settled = _record(0, [0.1] * 10, [0.05] * 10)
    late = _record(1, [0.01] * 9 + [0.2], [0.3] * 9 + [0.05])
    runs = {"automix": [settled, late]}
    final = pages.final_mask_stats(runs)
    assert final["std"].values == (0.1, 0.2) and final["gap"].values == (0.05, 0.05)
    assert [c.outcome for c in pages.settle_checks(runs)] == ["supports", "contradicts"]
    collapsed = pages.no_collapse_check({"std": study.SeedStats((0.001, 0.002, 0.001))})
    assert collapsed[0].outcome == "contradicts"
    structured = pages.no_collapse_check({"std": study.SeedStats((0.2, 0.25, 0.22))})
    assert structured[0].outcome == "supports"
    assert pages.no_collapse_check({}) == [] and pages.final_mask_stats({}) == {}
    # the reverse claim (Fig. 6 without the momentum pipeline): collapse supported by flat masks only
    assert pages.collapse_check({"std": study.SeedStats((0.001, 0.002, 0.001))})[0].outcome == "supports"
    assert pages.collapse_check({"std": study.SeedStats((0.2, 0.25, 0.22))})[0].outcome == "contradicts"
    assert pages.collapse_check({}) == []


def test_one_collapsed_seed_contradicts_no_collapse_whatever_the_mean():
    """AutoMix seed 1 of the study ended at std 0.0001 beside seed 0's 0.0742: a per-run claim, per seed."""
    mixed = {"std": study.SeedStats((0.0742, 0.0001), seeds=(0, 1))}
    checks = pages.no_collapse_check(mixed)
    assert [c.outcome for c in checks] == ["supports", "contradicts"]
    assert checks[1].statement.startswith("seed 1:") and "0.0001 (collapsed)" in checks[1].detail
    assert [c.outcome for c in pages.collapse_check(mixed)] == ["contradicts", "supports"]
    assert study.decide_verdict(checks) == "partly"


def test_lambda_follow_checks():
    response = {"correlation": study.SeedStats((0.8, 0.85, 0.9)), "abs_gap": study.SeedStats((0.05, 0.06, 0.04)),
                "floor": study.SeedStats((0.1875,) * 3), "slope": study.SeedStats((1.0, 1.0, 1.0))}
    assert [c.outcome for c in pages.lambda_follow_checks(response)] == ["supports", "supports"]
    assert pages.lambda_follow_checks({}) == []


# ----------------------------------------------------------------------------- stored snapshots


def _snapshot(pairs=2, lambdas=(0.0, 1.0)):
    images = np.full((2 * pairs, 4, 4, 3), 128, np.uint8)
    masks = np.stack([np.full((pairs, 4, 4), round(255 * lam), np.uint8) for lam in lambdas])
    b64 = lambda a: base64.b64encode(a.tobytes()).decode()  # noqa: E731
    return {"lambdas": list(lambdas), "pairs": pairs, "image_shape": [4, 4, 3], "labels": [[0, 1]] * pairs,
            "class_names": ["a", "b"], "images_uint8": b64(images), "masks_uint8": b64(masks)}


def test_snapshot_round_trips_through_json_and_draws():
    snapshot = json.loads(json.dumps(_snapshot()))
    assert np.allclose(pages.snapshot_mask_means(snapshot), [[0.0, 0.0], [1.0, 1.0]])
    fig = pages.plot_snapshot(snapshot, "t")
    assert len(fig.axes) == 2 * (2 + 2)
    assert len(pages.plot_snapshot_or_reason(None, "no weights", "t").axes) == 1


def test_snapshot_of_reads_the_store_and_never_computes_when_not_allowed():
    stored = SimpleNamespace(evaluations={"ema": {pages.SNAPSHOT_KEY: {"x": 1}}}, config=RunConfig())
    assert pages.snapshot_of(None, stored, may_compute=False) == ({"x": 1}, None)
    bare = SimpleNamespace(evaluations={}, config=RunConfig())
    snapshot, reason = pages.snapshot_of(None, bare, may_compute=False)
    assert snapshot is None and "draw_samples=True" in reason


def test_evaluation_options_are_the_study_plans_with_a_small_smoke_subset():
    from mixrepro.plans import STUDY_EVALUATION_OPTIONS

    def options(budget, **fields):
        return study.evaluation_options(study.validate_parameters(budget=budget, dataset="cifar10-jpeg",
                                                                  model="resnet18", methods=["mixup"], **fields))

    assert options("cpu") == STUDY_EVALUATION_OPTIONS  # the sweep's own: runs are shared with the study
    smoke = options("smoke")
    assert smoke["corruption"] == smoke["occlusion"] == {"images": 100}  # the pipeline, not evidence
    assert smoke["mixed_accuracy"] == STUDY_EVALUATION_OPTIONS["mixed_accuracy"]
    assert STUDY_EVALUATION_OPTIONS["corruption"] == {"images": 2000}  # not changed in place


def test_a_page_measures_the_bench_its_empty_store_lacks_only_when_it_may_train(tmp_path, monkeypatch):
    import mixrepro.training.bench as bench
    from mixrepro.study.parameters import validate_parameters

    seen = []

    def fake_run_bench(settings, **kwargs):
        seen.append(settings)
        return {"settings": {"warmup": settings.warmup}, "environment": {"device_type": "cpu"},
                "rows": [{"method": m} for m in ("vanilla", "mixup")]}

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    frozen = validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                 seeds=None, train=False, results_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match="bench report"):
        pages.bench_report_for(frozen)
    assert not seen
    path, report = pages.bench_report_for(dataclasses.replace(frozen, train=True))
    assert path.parent == tmp_path / "bench" / "cpu" and report["settings"] == {"warmup": 1}
    settings = seen[0]
    assert (settings.precision, settings.channels_last, settings.threads, settings.repeats) == ("bf16", True, 1, 3)
    assert pages.bench_report_for(frozen)[0] == path  # stored: the next execution reads it


def test_length_decay_compares_cutmixs_longest_run_with_its_best_shorter_one_once_every_length_landed(tmp_path):
    from landed_store import landed_store

    from mixrepro import plans
    from mixrepro.study.overview import BUDGET_EPOCHS, length_arms

    store = Path(__file__).resolve().parent.parent / "notebooks" / "results"
    arms = length_arms("cutmix", tmp_path / "empty")
    longer = [plans.equal_compute_epochs(BUDGET_EPOCHS, plans.load_bench_report(), learned, "cutmix")
              for learned in plans.EQUAL_COMPUTE["learned"]]
    assert [a.config.epochs for a in arms] == [BUDGET_EPOCHS, *sorted(longer)]
    check, reason = pages.length_decay_check("cutmix", arms)
    assert check is None and f"CutMix, {BUDGET_EPOCHS} epochs" in reason
    assert f"CutMix, {arms[-1].config.epochs} epochs" in reason

    landed_store(store, tmp_path / "results", [plans.study_plan()])
    landed = length_arms("cutmix", tmp_path / "results")
    check, reason = pages.length_decay_check("cutmix", landed)
    assert reason is None and check.statement.startswith("CutMix, ")
    # the claim: the longest run is the one below
    assert check.statement.endswith(f"higher than CutMix, {arms[-1].config.epochs} epochs")
    assert pages.length_decay_check("saliencymix", length_arms("saliencymix", tmp_path / "results")) == (
        None, "the study plan trains SaliencyMix at one length only")
    assert f"{BUDGET_EPOCHS} ep " in pages.lengths_text("cutmix", landed)
