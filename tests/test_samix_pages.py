"""The AMix / SAMix pages' module (mixrepro.study.samix_pages): the paper's arithmetic on the transcribed
Tables 1-5, 7-8, runs on the paper's data and their reasons, SAMix arms, mask diagnostics from per-epoch
logs, step costs. No training: records are built in memory, stores are empty temporary folders."""
from __future__ import annotations

import dataclasses

import pytest

from mixrepro import study
from mixrepro.config import RunConfig
from mixrepro.results import RunRecord
from mixrepro.study import samix_pages as sp

SAMIX_TABLES = ["samix_table1", "samix_table2", "samix_table3", "samix_table4", "samix_table5", "samix_table7",
                "samix_table8", "samix_fig2c", "samix_fig4", "samix_fig5"]


def params(tmp_path, budget="smoke", methods=("samix",), train=False):
    return study.validate_parameters(budget=budget, dataset="cifar10-jpeg", model="resnet18", methods=list(methods),
                                     seeds=None, train=train, results_dir=str(tmp_path))


def record(method="samix", seed=0, epochs=(), top1=50.0, **method_params):
    """A RunRecord in memory: per-epoch rows ``epochs`` and a scored top-1 for both networks."""
    summary = {net: {"median_last10": top1} for net in ("online", "ema")}
    config = RunConfig(method=method, seed=seed, method_params=method_params)
    return RunRecord(config, [dict(row) for row in epochs], summary, {})


def mask_rows(sd, n=10, lam=(0.3, 0.7), follow=1.0):
    """Epoch rows whose Mix Block masks have spatial sd ``sd`` and means m = follow * lam + (1 - follow) / 2."""
    m = [follow * v + (1 - follow) / 2 for v in lam]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    row = {"mask_std_gen": sd, "mask_saturated": 0.0, "lamresp_m": mean(m), "lamresp_lam": mean(lam),
           "lamresp_m_lam": mean([a * b for a, b in zip(m, lam)]), "lamresp_m2": mean([a * a for a in m]),
           "lamresp_lam2": mean([v * v for v in lam]), "lamresp_abs_gap": mean([abs(a - b) for a, b in zip(m, lam)])}
    return [row] * n


# ----------------------------------------------------------------------------- transcriptions and arithmetic


@pytest.mark.parametrize("name", SAMIX_TABLES)
def test_every_transcription_loads_with_its_reference(name):
    table = study.load_paper_table(name)
    assert table.paper_key == "anonymous2022amix" and table.caption and table.notes
    assert all(set(row) <= set(table.columns) for row in table.rows.values())


def test_gain_rows_follow_from_the_cells_except_cifar100_rx50():
    outcomes = {(t, c.statement): c.outcome for t in ("samix_table2", "samix_table3")
                for c in sp.gain_checks(study.load_paper_table(t))}
    assert len(outcomes) == 12
    assert [k for k, o in outcomes.items() if o != "supports"] == [
        ("samix_table2", "Table 2 Gain under CIFAR-100 RX-50 = AMix (SAMix) minus the best other row")]


def test_a_wrong_printed_gain_is_caught():
    table = study.load_paper_table("samix_table3")
    wrong = dataclasses.replace(table, printed_gain={**table.printed_gain, "in_r50": 0.20})
    assert [c.outcome for c in sp.gain_checks(wrong)].count("contradicts") == 1


def test_quoted_gains_and_only_above_vanilla_hold_and_an_altered_cell_breaks_them():
    t2, t3 = study.load_paper_table("samix_table2"), study.load_paper_table("samix_table3")
    checks = sp.quoted_gain_checks(t2) + sp.quoted_gain_checks(t3) + sp.only_above_check(t3)
    assert len(checks) == 5 and all(c.outcome == "supports" for c in checks)
    rows = {**t3.rows, "mixup": {**t3.rows["mixup"], "in_r18": 72.0}}
    assert sp.only_above_check(dataclasses.replace(t3, rows=rows))[0].outcome == "contradicts"
    assert sp.only_above_check(t2) == []


def test_table1_printed_differences_follow_from_the_cells():
    checks = sp.delta_checks(study.load_paper_table("samix_table1"))
    assert len(checks) == 23 and all(c.outcome == "supports" for c in checks)


def test_table8_every_module_raises_both_columns_but_lambda_adjusting_in_sl():
    table = study.load_paper_table("samix_table8")
    sl, cl = sp.cumulative_checks(table, "sl"), sp.cumulative_checks(table, "cl")
    assert len(sl) == len(cl) == 6 and all(c.outcome == "supports" for c in cl)
    assert [c.statement for c in sl if c.outcome == "contradicts"] == ["+λ adjusting above +Bilinear (SL)"]


def test_tables_4_5_7_orderings_the_text_states_hold():
    t4, t5, t7 = (study.load_paper_table(n) for n in ("samix_table4", "samix_table5", "samix_table7"))
    g4, g5 = sp.table_extras("samix_table4")["groups"], sp.table_extras("samix_table5")["groups"]
    checks = (sp.best_row_checks(t4, "amix_i", g4["linear mixup (no cluster information)"])
              + sp.best_row_checks(t4, "amix_c", g4["with cluster information (C)"])
              + sp.best_row_checks(t5, "amix_i", g5["without cluster information"])
              + sp.best_row_checks(t5, "amix_c", list(t5.rows))
              + [sp.row_above_check(t7, a, b, c) for a, b in sp.table_extras("samix_table7")["bce_added"].items()
                 for c in t7.columns])
    assert len(checks) == 4 + 4 + 4 + 4 + 4 and all(c.outcome == "supports" for c in checks)
    assert "next: MoCo v2 + MixUp" in checks[0].detail


def test_shared_cells_with_automix_table1_are_counted_and_listed():
    t1 = study.load_paper_table("automix_table1")
    text = sp.shared_cells_markdown(study.load_paper_table("samix_table2"), t1)
    assert text.startswith("12 of the 18 cells Table 2 shares with AutoMix Table 1 are equal")
    assert "| CutMix | CIFAR-100 RX-50 | 78.32 | 81.67 | -3.35 |" in text
    assert sp.shared_cells_markdown(t1, t1).endswith("are equal.")


# ----------------------------------------------------------------------------- runs on the paper's data


def test_paper_columns_take_the_papers_schedule_only_at_budget_paper(tmp_path):
    spec = study.load_paper_table("samix_table3").columns["tiny_r18"]
    assert sp.paper_column_fields(params(tmp_path), spec) == {"dataset": "tiny-imagenet", "model": "resnet18"}
    assert sp.paper_column_fields(params(tmp_path, "paper"), spec) == {
        "dataset": "tiny-imagenet", "model": "resnet18", "epochs": 400, "lr": 0.2, "batch_size": 100}


def test_absent_data_gives_one_reason_and_the_protocols_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXREPRO_DATA", str(tmp_path / "no-data"))
    t2, t3 = study.load_paper_table("samix_table2"), study.load_paper_table("samix_table3")
    found = sp.paper_column_runs(params(tmp_path, train=True), t2, ["c100_r18"]) | \
        sp.paper_column_runs(params(tmp_path), t3, ["in_r18"])
    assert found["c100_r18"] == ({}, "no runs on CIFAR-100 are stored and the dataset is not available to the "
                                     "study (see `mixrepro datasets` for how to obtain it)")
    assert found["in_r18"][1] == "'imagenet' is not among the datasets and models this study can load or build"
    verdict = sp.dataset_verdict("X", "claim", t2, found, ["c100_r18"], "cpu", 10)
    assert verdict.verdict == "not tested here" and "GPU-hours" in verdict.reason and "30 runs" in verdict.reason
    assert "pretrained" in sp.paper_cost(t2, ["cub_r18"], 10) and "GPU-hours" not in sp.paper_cost(t3, ["tiny_r18"], 10)
    assert sp.implemented(t3) == [m for m in t3.rows if m != "comixup"]


# ----------------------------------------------------------------------------- rankings, arms


def test_versus_checks_and_ranking_verdict_on_paired_seeds(tmp_path):
    runs = {m: [record(m, s, top1=v + s) for s in range(3)] for m, v in (("samix", 80.0), ("automix", 78.0),
                                                                        ("mixup", 79.0))}
    stats = study.scored_stats(runs)
    assert [c.statement for c in sp.versus_checks(stats, others=["automix"])] == [
        "SAMix top-1 higher than AutoMix"]
    verdict = sp.ranking_verdict("X-c10", "claim", "src", params(tmp_path, "cpu"), runs, None)
    assert verdict.verdict == "reproduced" and len(verdict.checks) == 2
    pending = sp.ranking_verdict("X-c10", "claim", "src", params(tmp_path, "cpu"), runs, "not run yet: fmix")
    assert pending.verdict == "not tested here" and pending.reason == "not run yet: fmix"


def test_alpha_arms_share_the_default_run():
    assert sp.alpha_arms([1.0, 2.0, 4.0]) == {"alpha=1": {"alpha": 1.0}, "alpha=2": {}, "alpha=4": {"alpha": 4.0}}


def test_arms_outside_the_study_plan_are_named_so(tmp_path):
    found, reasons = sp.samix_arms(params(tmp_path, "cpu"), {"defaults": {}, "no_adjust": {"mask_adjust": 0.0}})
    assert found == {} and set(reasons) == {"defaults", "no_adjust"}
    assert "not in the study plan" in reasons["no_adjust"] and "not in the study plan" not in reasons["defaults"]
    assert reasons["no_adjust"].startswith("not run (or not evaluated) yet")


def test_pairs_verdict_judges_named_groups_and_waits_for_missing_ones():
    groups = {"ce": [record(seed=s, top1=70.0 + s) for s in range(3)],
              "pbce": [record(seed=s, top1=69.0 + s) for s in range(3)],
              "mixup": [record("mixup", s, top1=71.0 + s) for s in range(3)]}
    names = {"ce": "CE", "pbce": "pBCE", "mixup": "Mixup", "x": "X"}
    verdict = sp.pairs_verdict("X", "claim", "src", "cpu", groups, {}, [("ce", "pbce"), ("ce", "mixup")], names)
    assert [c.outcome for c in verdict.checks] == ["supports", "contradicts"] and verdict.verdict == "partly"
    waiting = sp.pairs_verdict("X", "claim", "src", "cpu", groups, {"x": "not run", "pbce": "other"}, [("x", "ce")],
                               names)
    assert waiting.verdict == "not tested here" and waiting.reason == "X: not run"
    assert "| CE | 70.00" not in sp.ours_markdown(groups, names.get) and "| CE | 71.00 ± 1.00 (n=3)" in \
        sp.ours_markdown(groups, names.get)


# ----------------------------------------------------------------------------- mask diagnostics


def test_mask_statistics_read_the_logs_in_percent():
    runs = {"samix": [record(epochs=mask_rows(0.05, follow=1.0), seed=s) for s in range(2)],
            "automix": [record("automix", epochs=mask_rows(0.01, follow=0.0), seed=s) for s in range(2)],
            "mixup": [record("mixup", epochs=[{"loss": 1.0}])]}
    assert sp.mask_stats(runs)["samix"].mean == pytest.approx(5.0) and "mixup" not in sp.mask_stats(runs)
    assert sp.lambda_stats(runs, "slope")["samix"].mean == pytest.approx(100.0)
    assert sp.lambda_stats(runs, "abs_gap")["automix"].mean == pytest.approx(20.0)
    assert sp.ignore_floor(runs) == pytest.approx(18.75, abs=1e-3)  # Beta(2, 2): 3/16
    table = sp.mask_markdown(runs, 18.75)
    assert "not logged" in table and "undefined" in table  # AutoMix here: a constant mask mean, no correlation


def test_mask_verdicts_decide_at_an_evidence_budget():
    def runs_with(samix_sd, follow):
        return {"samix": [record(epochs=mask_rows(samix_sd + 0.001 * s, follow=follow), seed=s) for s in range(3)],
                "automix": [record("automix", epochs=mask_rows(0.01 + 0.002 * s), seed=s) for s in range(3)]}

    good = runs_with(0.05, follow=1.0)
    assert sp.nontrivial_verdict("X", "c", "s", "cpu", good, None).verdict == "reproduced"
    assert sp.lambda_verdict("X", "c", "s", "cpu", good, None).verdict == "reproduced"
    blind = runs_with(0.001, follow=0.0)
    assert sp.nontrivial_verdict("X", "c", "s", "cpu", blind, None).verdict == "not reproduced"
    assert sp.lambda_verdict("X", "c", "s", "cpu", {"automix": blind["automix"]}, None).verdict == "not tested here"


def test_the_initial_mix_block_plus_ignores_lambda_and_is_constant():
    fig = sp.initial_display_figure(n=2)
    assert len(fig.axes) == 2 * 5
    mask = fig.axes[2].images[0].get_array()
    assert float(mask.min()) == pytest.approx(0.5, abs=1e-3) and float(mask.max()) == pytest.approx(0.5, abs=1e-3)


# ----------------------------------------------------------------------------- cost, Fig. 2 (c), Tables 4-5


def test_bench_seconds_and_the_pareto_checks_only_compare_cheaper_methods():
    seconds = sp.bench_seconds()
    assert "samix" in seconds and not any("+" in m for m in seconds)
    assert seconds["samix"] > seconds["automix"] > seconds["mixup"]
    stats = {m: study.SeedStats((v,)) for m, v in (("samix", 80.0), ("mixup", 79.0), ("adautomix", 85.0))}
    assert [c.statement for c in sp.pareto_checks(stats, seconds)] == ["SAMix top-1 higher than Mixup (cheaper step)"]
    assert "| SAMix |" in sp.cost_markdown(seconds, stats) and "bf16" in sp.bench_settings()


def test_intra_class_share_and_ssl_cost():
    assert sp.intra_class_share(200) == 0.005
    assert "| Tiny | 200 | 0.5 % |" in sp.intra_class_markdown({"Tiny": 200})
    assert sp.ssl_cost("stl10", 800, 2).startswith("2 runs x 800 epochs x 411 iterations")
    assert "epochs not stated" in sp.ssl_cost("imagenet", None, 6)
