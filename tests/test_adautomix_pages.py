"""The AdAutoMix pages' module (mixrepro.study.adautomix_pages): the paper's arithmetic on the transcribed
tables, rankings of fake runs, AdAutoMix's arms, reasons for runs that cannot be had, the bench checks.
No training: records are faked, and collect_runs only looks into empty temporary stores."""
from __future__ import annotations

import dataclasses
import statistics
from types import SimpleNamespace

import pytest

from mixrepro import study
from mixrepro.config import RunConfig
from mixrepro.errors import InvalidParameterError
from mixrepro.study import adautomix_pages as pages

TABLES = ["adautomix_table1", "adautomix_table2", "adautomix_table3", "adautomix_table4", "adautomix_table5",
          "adautomix_table7", "adautomix_table8", "adautomix_table9", "adautomix_table10", "adautomix_table11",
          "adautomix_fig6", "adautomix_fig10", "adautomix_fig11", "adautomix_figs12_14"]


def params(tmp_path, budget="smoke", methods=("adautomix",), train=False):
    return study.validate_parameters(budget=budget, dataset="cifar10-jpeg", model="resnet18", methods=list(methods),
                                     seeds=None, train=train, results_dir=str(tmp_path))


def record(method="mixup", seed=0, top1=50.0, evaluations=None, curves=None):
    """A fake RunRecord: the scored top-1, stored evaluations (the same for both networks) and epoch curves."""
    summary = {net: {"median_last10": top1} for net in ("online", "ema")}
    return SimpleNamespace(config=RunConfig(method=method, seed=seed), summary={**summary, "wall_time_s": 60.0},
                           predictions=None, evaluations={"online": evaluations or {}, "ema": evaluations or {}},
                           curve=lambda column: (curves or {}).get(column, []))


# ----------------------------------------------------------------------------- transcriptions and arithmetic


@pytest.mark.parametrize("name", TABLES)
def test_every_transcription_loads_with_its_reference(name):
    table = study.load_paper_table(name)
    assert table.paper_key == "qin2024adautomix" and table.table and table.caption and table.notes
    assert all(set(row) <= set(table.columns) for row in table.rows.values())


def test_printed_gains_and_quoted_gains_follow_from_the_cells():
    for name in ("adautomix_table1", "adautomix_table2", "adautomix_table3"):
        table = study.load_paper_table(name)
        checks = pages.printed_gain_checks(table) + pages.quoted_gain_checks(table)
        assert len(pages.printed_gain_checks(table)) == len(table.printed_gain)
        assert all(c.outcome == "supports" for c in checks), [c.detail for c in checks if c.outcome != "supports"]


def test_a_wrong_printed_gain_or_quote_is_caught():
    table = study.load_paper_table("adautomix_table1")
    wrong = dataclasses.replace(table, printed_gain={**table.printed_gain, "c100_r18": 0.38})
    assert [c.outcome for c in pages.printed_gain_checks(wrong)].count("contradicts") == 1
    shifted = dataclasses.replace(table, rows={**table.rows, "automix": {**table.rows["automix"], "tiny_r18": 68.0}})
    assert "contradicts" in [c.outcome for c in pages.quoted_gain_checks(shifted)]


def test_table1_baselines_are_automix_table1_cells():
    checks = pages.same_cells_checks(study.load_paper_table("adautomix_table1"))
    assert len(checks) == 4 and all(c.outcome == "supports" for c in checks)
    assert all("all 8 shared methods equal" in c.detail for c in checks)


def test_table7_adautomix_is_best_at_every_ratio_of_both_blocks():
    checks = pages.best_everywhere_checks(study.load_paper_table("adautomix_table7"))
    assert len(checks) == 20 and all(c.outcome == "supports" for c in checks)


def test_table6_swin_column_is_a_tie_with_fmix():
    checks = pages.best_everywhere_checks(study.load_paper_table("adautomix_table6"))
    assert [c.outcome for c in checks] == ["supports", "supports"]
    assert "a tie" in checks[1].detail and "FMix" in checks[1].detail


def test_ablation_tables_steps_and_the_text_gains_of_table5():
    table8 = study.load_paper_table("adautomix_table8")
    assert all(c.outcome == "supports" for c in pages.increasing_checks(table8, list(table8.rows), "c100_r18"))
    text = pages.text_step_checks(study.load_paper_table("adautomix_table5"), table8)
    assert [c.outcome for c in text] == ["supports", "supports"]


def test_tables9_10_best_rows_and_their_consistency_with_table1():
    t9, t10 = study.load_paper_table("adautomix_table9"), study.load_paper_table("adautomix_table10")
    assert all(c.outcome == "supports" for c in pages.row_best_checks(t9, pages.extras(t9.name)["preferred"]))
    assert all(c.outcome == "supports" for c in pages.best_everywhere_checks(t10, ["top1", "top5"], winner="n3"))
    outcomes = [c.outcome for c in pages.table1_consistency_checks(t9, t10)]
    assert outcomes == ["supports", "contradicts", "supports", "supports"]  # RX-50: 84.40 vs Table 1's 84.22


def test_not_built_methods_are_listed_with_what_they_take():
    text = pages.not_built_markdown(study.load_paper_table("adautomix_table11"))
    assert text.count("\n| ") == 3 and "54.01" in text and "DADA" in text and "domain adaptation" in text


# ----------------------------------------------------------------------------- rankings of our runs


def test_winner_checks_pair_seeds_and_skip_methods_with_other_seed_counts():
    stats = {"adautomix": study.SeedStats((80.0, 81.0, 82.0)), "mixup": study.SeedStats((70.0, 71.0, 72.0)),
             "cutmix": study.SeedStats((75.0,))}
    checks = pages.winner_checks(stats, study.method_label)
    assert [c.outcome for c in checks] == ["supports"]
    lower = pages.winner_checks(stats, study.method_label, higher_is_better=False, quantity="ECE")
    assert lower[0].outcome == "contradicts" and "ECE lower" in lower[0].statement
    assert pages.winner_checks({"mixup": stats["mixup"]}, study.method_label) == []


def test_ranking_verdict_is_not_tested_at_smoke_and_decided_at_cpu():
    stats = {"adautomix": study.SeedStats((80.0, 81.0, 82.0)), "mixup": study.SeedStats((70.0, 71.0, 72.0))}
    smoke = pages.ranking_verdict("X-c10", "claim", "src", "smoke", stats, {}, None, study.method_label)
    cpu = pages.ranking_verdict("X-c10", "claim", "src", "cpu", stats, {}, None, study.method_label)
    assert (smoke.verdict, smoke.rule_outcome, cpu.verdict) == ("not tested here", "reproduced", "reproduced")
    missing = pages.ranking_verdict("X-c10", "claim", "src", "cpu", stats, {}, "not run yet", study.method_label)
    assert missing.verdict == "not tested here" and missing.reason == "not run yet"


def test_occlusion_statistics_and_checks_from_stored_evaluations():
    def occluded(values):
        return {"occlusion": {"top1": dict(zip(("0", "0.5", "0.9"), values)), "images": 500, "grid": 16}}

    runs = {"adautomix": [record("adautomix", s, evaluations=occluded((80, 60 + s, 20))) for s in range(3)],
            "mixup": [record("mixup", s, evaluations=occluded((80, 50 + s, 25))) for s in range(3)]}
    stats = pages.occlusion_stats(runs)
    assert list(stats) == ["0", "0.5", "0.9"] and stats["0.5"]["adautomix"].mean == 61
    assert stats["0.5"]["mixup"].n_images == 500  # the same occluded images for every network of a seed
    checks = pages.occlusion_checks(stats, study.method_label)
    assert [c.outcome for c in checks] == ["supports", "contradicts"]  # ratio 0 is not a claim
    assert "90% occlusion" in checks[1].statement
    assert "16x16 grid" in pages.occlusion_protocol(runs) and "500 test images" in pages.occlusion_protocol(runs)
    assert "| 50% |" in pages.occlusion_markdown(stats, study.method_label)
    one_seed = pages.occlusion_stats({m: r[:1] for m, r in runs.items()})  # seed 0: 60 vs 50 %, 20 vs 25 %
    # of 500 images, a 10-point gap is decided by the bound and a 5-point one is not
    assert [c.outcome for c in pages.occlusion_checks(one_seed, study.method_label)] == ["supports", "inconclusive"]


def test_robustness_statistics_and_the_gains_over_automix():
    def robust(clean, corrupted, error):
        return {"fgsm": {"clean_top1": clean, "fgsm_error": error},
                "corruption": {"mean": corrupted, "source": "regenerated", "corruptions": ["fog"], "images": 500}}

    runs = {"adautomix": [record("adautomix", 0, evaluations=robust(80.0, 60.0, 70.0))],
            "automix": [record("automix", 0, evaluations=robust(79.0, 61.0, 75.0))]}
    stats = pages.robustness_stats(runs)
    assert stats["corruption"]["automix"].mean == 61.0
    text = pages.gains_text(stats, {"clean": 1.53, "corruption": 0.40}, study.method_label)
    assert "clean: the text +1.53, ours +1.00" in text and "corruption: the text +0.40, ours -1.00" in text
    assert "1 corruptions (fog)" in pages.corruption_source(runs)
    assert len(pages.robustness_run_checks(runs, study.method_label)) == 3
    # clean top-1 and FGSM error are percentages of the run's test images: one seed is judged by McNemar's
    # bound (5 points of 10,000 images decide), while the corruption mean (60 sets of 2,000) has no such bound
    assert stats["fgsm_error"]["adautomix"].n_images == stats["clean"]["automix"].n_images == 10000
    assert stats["corruption"]["automix"].n_images is None
    fgsm = pages.winner_checks(stats["fgsm_error"], study.method_label, higher_is_better=False, quantity="FGSM")
    assert [c.outcome for c in fgsm] == ["supports"]


# ----------------------------------------------------------------------------- AdAutoMix's arms


def test_arm_params_leave_out_defaults_so_the_default_arm_is_the_shared_run(tmp_path):
    p = params(tmp_path)
    assert pages.arm_params({"alpha": 1.0, "num_sources": 2}) == {"num_sources": 2}
    arms = pages.value_arms("lambda", "alpha", [0.2, 1.0])
    assert arms == {"lambda=0.2": {"alpha": 0.2}, "lambda=1": {}}
    assert p.config("adautomix", 0, method_params=arms["lambda=1"]).key() == p.config("adautomix", 0).key()
    with pytest.raises(InvalidParameterError, match="AdAutoMix parameter"):
        pages.arm_params({"temperature": 2.0})


def test_table8_arms_add_one_term_at_a_time():
    arms = pages.named_arms(pages.TABLE8_ARMS, pages.TABLE8_SHORT.get)
    assert arms["Base"] == {"mce_weight": 0.0, "ace_weight": 0.0, "teacher_weight": 0.0, "cosine_weight": 0.0}
    assert arms["+ L_ace"] == {"mce_weight": 0.0, "ace_weight": 0.5, "teacher_weight": 0.0, "cosine_weight": 0.0}
    assert arms["+ L_ace + L_mce"] == {"teacher_weight": 0.0, "cosine_weight": 0.0}
    assert arms["+ teacher L_amce"] == {"cosine_weight": 0.0} and arms["+ L_cosine (full)"] == {}


def test_grids_are_a_cheap_pair_at_smoke_and_the_tables_otherwise(tmp_path):
    assert pages.grid(params(tmp_path), "lambda") == [1.0, 0.2]
    assert pages.grid(params(tmp_path, budget="cpu"), "N") == [2, 3, 4, 5]
    assert pages.grid(params(tmp_path, budget="cpu"), "N", [2]) == [2]


def test_missing_arms_name_their_reason(tmp_path):
    found, reasons = pages.collect_arms(params(tmp_path, budget="cpu"), {"N=2": {"num_sources": 2}})
    assert found == {}
    assert "not run" in reasons["N=2"] and "not in the study plan" in reasons["N=2"]
    joined = pages.arms_reason({"a": "why", "b": "why", "c": "other"})
    assert joined == "a, b: why; c: other" and pages.arms_reason({}) is None


def test_grid_arms_read_vanilla_as_n_equals_1(tmp_path):
    found, stats, reason = pages.grid_arms(params(tmp_path, budget="cpu"), "N", [3])
    assert found == {} and "vanilla" in reason and "N=1" in reason


def test_preferred_and_step_checks():
    stats = {"lambda=1": study.SeedStats((80.0, 81.0)), "lambda=0.2": study.SeedStats((70.0, 71.0)),
             "lambda=2": study.SeedStats((79.0,))}
    checks = pages.preferred_checks(stats, "lambda=1")
    assert len(checks) == 1 and checks[0].statement.startswith("AdAutoMix lambda=1")
    steps = pages.step_checks({"a": study.SeedStats((1.0, 2.0)), "b": study.SeedStats((3.0, 4.0))}, ["a", "x", "b"])
    assert len(steps) == 1 and steps[0].outcome == "supports"


def test_a_one_seed_arm_is_checked_against_the_three_seed_study_run_on_their_shared_seed():
    full = study.SeedStats((82.0, 70.0, 70.0), seeds=(0, 1, 2))  # the study's AdAutoMix, three seeds
    arm = study.SeedStats((80.0,), seeds=(0,))  # a pages-plan ablation arm: seed 0 only
    steps = pages.step_checks({"teacher": arm, "full": full}, ["teacher", "full"])
    assert len(steps) == 1 and "+2.00 points (1 seed" in steps[0].detail  # seed 0: 82 - 80, not the mean of three
    assert len(pages.preferred_checks({"full": full, "teacher": arm}, "full")) == 1


def test_mask_curves_from_the_logged_statistics():
    curves = {"mask_std": [0.1, 0.2], "mask_mean_gap": [0.3, 0.2]}
    runs = {"adautomix": [record("adautomix", 0, curves=curves)],
            "automix": [record("automix", 0, curves={"mask_std_gen": [0.05, None], "mask_mean_gap_gen": [0.1, 0.1]})]}
    found = pages.mask_curves(runs)
    assert found["adautomix"]["std"] == [(1, 0.1), (2, 0.2)] and found["automix"]["std"] == [(1, 0.05)]
    assert pages.plot_mask_curves(found).axes


# ----------------------------------------------------------------------------- paper data and costs


def test_columns_that_cannot_run_here_say_why(tmp_path):
    table = study.load_paper_table("adautomix_table1")
    found = pages.column_runs(params(tmp_path, budget="cpu"), table, ["c100_swin", "in1k_r34", "c100_r18"])
    assert found["c100_swin"].reason == "model 'swin_tiny' not implemented in this study"
    assert "dataset 'imagenet' and model 'imagenet_resnet34'" in found["in1k_r34"].reason
    assert found["c100_r18"].runs == {} and "CIFAR-100" in found["c100_r18"].reason
    verdict = pages.paper_data_verdict("X", "claim", table, found, "cpu", "many GPU-hours")
    assert verdict.verdict == "not tested here" and verdict.reason.endswith("At the paper's protocol: many GPU-hours")


def test_column_fields_take_the_paper_schedule_only_at_budget_paper(tmp_path):
    spec = study.load_paper_table("adautomix_table1").columns["tiny_r18"]
    assert pages.column_fields(params(tmp_path, budget="cpu"), spec) == {"dataset": "tiny-imagenet",
                                                                         "model": "resnet18"}
    assert pages.column_fields(params(tmp_path, budget="paper"), spec)["lr"] == 0.2



def test_open_page_takes_the_methods_of_a_table_without_cells(tmp_path):
    _, p = pages.open_page("adautomix_table4", budget="cpu", dataset="cifar10-jpeg", model="resnet18",
                           results_dir=str(tmp_path))
    assert p.methods == ("cutmix", "fmix", "puzzlemix", "automix", "adautomix")


# ----------------------------------------------------------------------------- cost per step


def test_bench_checks_on_the_committed_report():
    from mixrepro.plans import load_bench_report

    report = load_bench_report()
    steps = pages.bench_seconds(report)
    assert pages.slower_check("AdAutoMix", steps["adautomix"], "Vanilla", steps["vanilla"]).outcome == "supports"
    assert pages.slower_check("Vanilla", steps["vanilla"], "AdAutoMix", steps["adautomix"]).outcome == "contradicts"
    text = pages.bench_markdown(report, study.load_paper_table("adautomix_table10"))
    assert "1.53x" in text and text.count("\n| N = ") == 5


def test_cost_growth_with_n_is_judged_on_one_report_of_every_n(tmp_path):
    def report(seconds_by_n):
        return {"rows": [{"method": pages.NUM_SOURCES_ROWS[n], "seconds_per_step": statistics.median(steps),
                          "step_seconds": steps} for n, steps in seconds_by_n.items()]}

    rising = report({n: [0.1 * n + 0.001 * i for i in range(12)] for n in (1, 3, 2, 4, 5)})  # bench row order
    checks = pages.cost_growth_checks(rising)
    assert [c.statement for c in checks] == [f"N = {n + 1} slower per step than N = {n}" for n in range(1, 5)]
    assert all(c.outcome == "supports" for c in checks)
    assert pages.num_sources_text(rising).startswith("0.106, 0.206, 0.306, 0.406, 0.506 s/step")  # N order
    flat = report({n: [0.5 + 0.001 * ((i * 7 + n) % 12) for i in range(12)] for n in range(1, 6)})
    assert "supports" not in {c.outcome for c in pages.cost_growth_checks(flat)}
    assert pages.cost_growth_checks(None) == [] and pages.num_sources_text(None) == ""
    assert pages.num_sources_bench(tmp_path) == (None, None)  # a store without such a report
    # the committed report times every N in one process; the page's table shows each N's seconds
    path, committed = pages.num_sources_bench(study.PAPER_NUMBERS_DIR.parent.parent / "notebooks" / "results")
    assert path is not None and len(pages.cost_growth_checks(committed)) == 4
    from mixrepro.plans import load_bench_report

    text = pages.bench_markdown(load_bench_report(), study.load_paper_table("adautomix_table10"), committed)
    n_bench_cells = [[c.strip() for c in row.strip("|").split("|")][-2:] for row in text.splitlines()[2:]]
    assert len(n_bench_cells) == 5 and "–" not in sum(n_bench_cells, [])  # every N has a number of ours
    assert n_bench_cells[0][1] == "1.00x"  # each report's ratios are to its own N = 1


def test_table10_seconds_are_read_from_the_transcribed_table_as_printed():
    table = study.load_paper_table("adautomix_table10")
    printed = pages.paper_step_seconds(table)
    assert printed == {n: f"{table.value(f'n{n}', 's_per_iter'):.4f}" for n in range(1, 6)}
    assert [float(v) for v in printed.values()] == sorted(float(v) for v in printed.values())  # grows with N


def test_ratio_check_bound():
    assert pages.ratio_check("r", 1.6, 1.53).outcome == "supports"
    assert pages.ratio_check("r", 4.4, 1.53).outcome == "contradicts"


def test_arms_a_smoke_execution_skips_say_so_and_what_they_cost(tmp_path):
    all_arms = pages.named_arms(pages.ADVERSARIAL_ARMS)
    skipped = pages.skipped_arms(params(tmp_path), all_arms, {"adversarial": {}})
    assert list(skipped) == ["without adversarial"]
    assert "not run at budget 'smoke'" in skipped["without adversarial"]
    assert "at budget 'cpu' it costs about" in skipped["without adversarial"] and "(1 seed)" in skipped[
        "without adversarial"]
    assert pages.skipped_arms(params(tmp_path), all_arms, all_arms) == {}


def test_table4_text_quotes_the_papers_text_where_the_table_is_missing():
    from mixrepro.study import adautomix_pages as pages

    assert pages.table4_text("clean") == "AdAutoMix +1.53 over AutoMix (Sec. 4.3 text)"
    assert pages.table4_text("corruption") == "AdAutoMix +0.40 over AutoMix (Sec. 4.3 text)"
    assert "missing from our copy" in pages.table4_text("fgsm_error")
