"""The Decoupled Mixup appendix pages' module (mixrepro.study.dm_pages): the paper's arithmetic on the
transcribed Tables A2-A8, run pairs and their reasons, fractions, DM hyper-parameter arms, mixed-sample
accuracy. No training: stored smoke runs are copied into a temporary store, records are faked otherwise."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from mixrepro import study
from mixrepro.config import RunConfig
from mixrepro.plans import in_pages_plan, pages_plan
from mixrepro.study import dm_pages
from mixrepro.study.collect import DM_CE_PARAMS

STORE = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "cifar10-jpeg"
SMOKE_MIXUP = {"mce": STORE / "mixup" / "31221335b49f", "dm_ce": STORE / "mixup" / "be221a42cad1"}
DM_TABLES = ["dm_tableA2", "dm_tableA3", "dm_tableA4", "dm_tableA5", "dm_tableA6", "dm_tableA8"]


def params(tmp_path, budget="smoke", methods=("mixup",), train=False):
    return study.validate_parameters(budget=budget, dataset="cifar10-jpeg", model="resnet18", methods=list(methods),
                                     seeds=None, train=train, results_dir=str(tmp_path))


def copy_run(path: Path, store: Path) -> None:
    shutil.copytree(path, store / "cifar10-jpeg" / path.parent.name / path.name)


# ----------------------------------------------------------------------------- transcriptions and arithmetic


@pytest.mark.parametrize("name", DM_TABLES)
def test_every_gain_column_has_its_base_and_both_share_a_group(name):
    table = study.load_paper_table(name)
    extras = dm_pages.table_extras(name)
    for column in table.printed_gain:
        base = extras["gain_base"][column]
        assert table.columns[column]["group"] == table.columns[base]["group"]
        assert dm_pages.paper_gains(table, column, base, extras.get("gain_methods"))


def test_printed_average_gains_follow_from_the_cells_except_table_a4_dm_bce():
    outcomes = {(name, c.statement): c.outcome for name in DM_TABLES
                for c in dm_pages.printed_gain_checks(study.load_paper_table(name))}
    contradicted = [key for key, outcome in outcomes.items() if outcome != "supports"]
    assert len(outcomes) == 5 + 3 + 3 + 2 + 4 + 3
    assert contradicted == [("dm_tableA4", "Table A4 Avg. Gain under R-50 RSB A3 DM(BCE) = mean of its 4 gains")]


def test_a_wrong_printed_gain_is_caught():
    import dataclasses

    table = study.load_paper_table("dm_tableA2")
    wrong = dataclasses.replace(table, printed_gain={**table.printed_gain, "c100_r18_dm": 0.25})
    outcomes = [c.outcome for c in dm_pages.printed_gain_checks(wrong)]
    assert outcomes.count("contradicts") == 1


def test_text_ranges_of_c1_match_the_table_except_puzzlemix_on_cifar100():
    checks = dm_pages.text_range_checks(study.load_paper_table("dm_tableA2"))
    assert [c.outcome for c in checks] == ["contradicts", "supports", "supports", "supports"]
    assert "+0.12 to +0.23" in checks[0].detail
    for name in ("dm_tableA3", "dm_tableA6", "dm_tableA8"):
        assert all(c.outcome == "supports" for c in dm_pages.text_range_checks(study.load_paper_table(name)))


def test_table_a2_mce_columns_are_automix_table1_and_a7_agrees_on_automix_tiny():
    a2, t1 = study.load_paper_table("dm_tableA2"), study.load_paper_table("automix_table1")
    for method in ("saliencymix", "puzzlemix", "automix"):
        for group in ("c100_r18", "c100_rx50", "c100_wrn", "tiny_r18", "tiny_rx50"):
            assert a2.value(method, f"{group}_mce") == t1.value(method, group), (method, group)
    a7 = study.load_paper_table("dm_tableA7")
    assert (a2.value("automix", "tiny_r18_mce"), a2.value("automix", "tiny_r18_dm")) == \
        (a7.value("automix", "tiny_acc_mce"), a7.value("automix", "tiny_acc_dm"))


def test_paper_gain_texts():
    a2 = study.load_paper_table("dm_tableA2")
    assert dm_pages.paper_gain_text(a2, "puzzlemix") == "+0.12 to +0.71 (Table A2)"
    assert dm_pages.printed_gain_text(a2, ["tiny_r18", "tiny_rx50"]) == "Avg. Gain +0.95, +0.56"
    assert dm_pages.group_label(a2, "c100_wrn") == "CIFAR-100 WRN-28-8"
    assert "Avg. Gain (printed)" in dm_pages.paper_gains_markdown(a2)


# ----------------------------------------------------------------------------- settings


def test_paper_eta_follows_appendix_b3():
    assert dm_pages.paper_eta("automix", "tiny-imagenet", "resnext50") == 1.0
    assert dm_pages.paper_eta("saliencymix", "cifar100", "resnet18") == 0.1
    assert dm_pages.paper_eta("saliencymix", "tiny-imagenet", "resnet18") == 1.0
    assert dm_pages.paper_eta("saliencymix", "cub200", "imagenet_resnext50") == 0.1


def test_the_presets_eta_shares_the_plain_dm_run_and_other_etas_are_explicit():
    assert dm_pages.eta_params("mixup", 0.1) == DM_CE_PARAMS
    assert dm_pages.eta_params("automix", 1.0) == DM_CE_PARAMS
    assert dm_pages.eta_params("mixup", 1.0) == {"loss": "dm_ce", "loss_params": {"eta": 1.0}}


def test_bce_arms_vary_xi_then_t_from_the_other_preset_and_build():
    from mixrepro.methods import METHODS
    from mixrepro.methods.base import method_loss

    arms = dm_pages.bce_arms(["mixup", "cutmix"])
    assert list(arms["mixup"]) == ["xi=1, t=0.5", "xi=0.8, t=0.5", "xi=1, t=1"]
    assert arms["cutmix"]["xi=0.8, t=1"] == {"loss": "dm_bce"}
    assert arms["cutmix"]["xi=1, t=1"] == {"loss": "dm_bce", "loss_params": {"xi": 1.0}}
    for method, by_arm in arms.items():
        for method_params in by_arm.values():
            loss = method_loss(method_params["loss"], METHODS.get(method), method_params.get("loss_params", {}))
            assert loss.name == "dm_bce"


def test_alpha_rows_name_only_methods_whose_alpha_differs_from_b3():
    rows = dm_pages.dm_alpha_rows(["mixup", "cutmix", "puzzlemix", "automix", "vanilla"])
    assert [r[0] for r in rows] == ["Mixup", "PuzzleMix"]
    assert "B.3" in dm_pages.dm_alpha_markdown(["mixup"])
    assert "equals" in dm_pages.dm_alpha_markdown(["cutmix"])


@pytest.mark.parametrize("budget, sizes", [("smoke", [150, 300, 500]), ("cpu", [1500, 3000, 5000]),
                                           ("paper", [7500, 15000, 25000])])
def test_fractions_are_of_the_budgets_training_set(tmp_path, budget, sizes):
    p = params(tmp_path, budget)
    assert [dm_pages.fraction_images(p, "cifar10-jpeg", f) for f in dm_pages.TRAIN_FRACTIONS] == sizes


def test_group_fields_take_the_papers_schedule_only_at_budget_paper(tmp_path):
    spec = {"dataset": "cifar100", "model": "resnet18", "epochs": 800, "lr": 0.1, "train_fraction": 0.15}
    assert dm_pages.group_fields(params(tmp_path, "smoke"), spec) == {"dataset": "cifar100", "model": "resnet18",
                                                                     "train_subset": 150}
    assert dm_pages.group_fields(params(tmp_path, "paper"), spec) == {
        "dataset": "cifar100", "model": "resnet18", "epochs": 800, "lr": 0.1, "train_subset": 7500}


# ----------------------------------------------------------------------------- runs


def test_loss_pairs_load_stored_runs_and_name_the_missing(tmp_path):
    copy_run(SMOKE_MIXUP["mce"], tmp_path)
    copy_run(SMOKE_MIXUP["dm_ce"], tmp_path)
    pair = dm_pages.loss_pair_runs(params(tmp_path), ["mixup", "cutmix"])
    assert pair.methods() == ["mixup"] and "cutmix" in pair.reason and "mixup" not in pair.reason.split(";")[0]
    merged = dm_pages.merge_pairs(dm_pages.per_method_pairs(params(tmp_path), ["mixup", "cutmix"]).values())
    assert merged.methods() == ["mixup"] and "cutmix" in merged.reason
    rows = dm_pages.pair_rows(pair, study.method_label)
    dm, mce = (study.run_top1(pair.new["mixup"][0], "online"), study.run_top1(pair.base["mixup"][0], "online"))
    assert rows[0][1] == "Mixup" and rows[0][5] == f"{dm - mce:+.2f}"  # DM(CE) - MCE, median of 2 epochs


def test_the_stand_in_verdict_of_a_method_not_run_names_the_methods_parameter(tmp_path):
    a2 = study.load_paper_table("dm_tableA2")
    v = dm_pages.stand_in_verdict("x", "claim", a2, {}, "samix", "cpu")
    assert v.verdict == "not tested here" and "parameter `methods`" in v.reason
    assert v.paper_value == "+0.09 to +0.27 (Table A2)"


def test_cpu_runs_outside_the_study_plan_are_named(tmp_path):
    p = params(tmp_path, "cpu", methods=("automix",))
    assert dm_pages.outside_plan_note(p, ["automix"], method_params=DM_CE_PARAMS) == ""
    note = dm_pages.outside_plan_note(p, ["saliencymix"], method_params=DM_CE_PARAMS)
    assert "SaliencyMix" in note and "not in the study plan" in note
    assert ("in the `pages` plan, which runs after it" in note) == all(
        in_pages_plan(p.config("saliencymix", s, method_params=DM_CE_PARAMS)) for s in p.seeds)
    odd = dm_pages.outside_plan_note(p, ["mixup"], method_params={"alpha": 0.123})  # an arm no page asks for
    assert "not in the study plan" in odd and "sweep pages" not in odd
    queued = next(c for c in pages_plan().configs if c.method == "automix")  # an arm a page asks for
    one_seed = dataclasses.replace(p, seeds=(0,))  # a page's ablation arm runs seed 0 only (plans.cpu_seeds)
    note = dm_pages.outside_plan_note(one_seed, ["automix"], method_params=queued.method_params,
                                      epochs=queued.epochs, train_subset=queued.train_subset)
    assert "AutoMix" in note and "in the `pages` plan, which runs after it" in note
    assert dm_pages.outside_plan_note(params(tmp_path), ["saliencymix"]) == ""  # only the cpu sweep has a plan


def test_paper_groups_name_what_cannot_be_loaded(tmp_path, monkeypatch):
    import mixrepro.study.collect as collect

    monkeypatch.setattr(collect, "dataset_available", lambda name, root=None: False)
    monkeypatch.setattr(dm_pages, "dataset_available", lambda name, root=None: False)
    a3 = dm_pages.paper_group_runs(params(tmp_path), study.load_paper_table("dm_tableA3"), ["automix"])
    assert "'imagenet' is not among the datasets" in a3["r18"].reason
    a2 = dm_pages.paper_group_runs(params(tmp_path), study.load_paper_table("dm_tableA2"), ["automix"])
    assert a2["c100_r18"].reason.startswith("no runs on CIFAR-100 are stored")
    assert a2["c100_r18"].reason == a2["c100_rx50"].reason  # one sentence per dataset
    v = dm_pages.paper_data_verdict("x", "claim", study.load_paper_table("dm_tableA2"),
                                    {g: a2[g] for g in ("c100_r18", "c100_rx50")}, "cpu", "N GPU-hours")
    assert v.verdict == "not tested here" and v.reason.endswith("At the paper's protocol: N GPU-hours")


# ----------------------------------------------------------------------------- mixed samples, curves, arms


def fake_record(seed=0, top1=(10.0, 20.0), mixed=None, method="mixup"):
    evaluations = {net: {"mixed_accuracy": mixed} for net in ("online", "ema")} if mixed else {}
    epochs = [{"online_top1": v, "ema_top1": v} for v in top1]
    return SimpleNamespace(config=RunConfig(method=method, seed=seed), evaluations=evaluations, epochs=epochs,
                           curve=lambda column: [row.get(column) for row in epochs], summary={"wall_time_s": 1.0})


def test_runs_without_the_mixed_sample_evaluation_are_left_out_when_the_page_may_not_train(tmp_path):
    runs = {"mixup": [fake_record(mixed={"top1": 60.0, "top2": 30.0})], "cutmix": [fake_record(method="cutmix")]}
    kept, reason = dm_pages.with_mixed_accuracy(params(tmp_path), runs)
    assert list(kept) == ["mixup"] and "CutMix seed 0" in reason
    stats = dm_pages.mixed_stats(kept)
    assert stats["top2"]["mixup"].mean == 30.0
    assert dm_pages.mixed_accuracy_options() == {"mixer": "mixup", "mixer_params": {"alpha": 1.0}}


def test_curve_mean_is_the_mean_test_top1_over_measured_epochs():
    record = fake_record(top1=(10.0, None, 30.0))
    assert dm_pages.curve_mean_stats({"mixup": [record]})["mixup"].mean == 20.0


def test_preferences_check_the_preferred_arm_against_the_others():
    def arm(*values):
        return dm_pages.ArmStats(study.SeedStats(values), (fake_record(),))

    stats = {"mixup": {"eta=0.1": arm(80.0, 81.0, 82.0), "eta=1": arm(70.0, 71.0, 72.0)}}
    checks = dm_pages.preference_checks(stats, {"mixup": "eta=0.1"})
    assert [c.outcome for c in checks] == ["supports"]
    v = dm_pages.preference_verdict("x", "claim", "src", "cpu", ["mixup"], stats, {}, {"mixup": "eta=0.1"})
    assert v.verdict == "reproduced" and v.runs == 1
    missing = dm_pages.preference_verdict("x", "claim", "src", "cpu", ["mixup", "cutmix"], stats,
                                          {"cutmix": "eta=1: not run"}, {"mixup": "eta=0.1", "cutmix": "eta=0.1"})
    assert missing.verdict == "not tested here" and "CutMix: eta=1: not run" in missing.reason
    empty = dm_pages.preference_verdict("x", "claim", "src", "cpu", [], stats, {}, {})
    assert empty.verdict == "not tested here"
    assert "yes" in dm_pages.arms_markdown(stats, {"mixup": "eta=0.1"})
    assert dm_pages.methods_by_preset(["mixup", "automix"], "dm_ce") == {"static": ["mixup"], "dynamic": ["automix"]}


def test_figures_draw_from_stats_and_records():
    s = study.SeedStats((50.0, 52.0))
    fig = dm_pages.plot_mixed_accuracy([("Mixup", "mixup", {"top1": s, "top2": s}),
                                        ("Mixup DM(CE)", "mixup", {"top1": s, "top2": s})],
                                       [("Mixup MCE", "mixup", "-", [fake_record()])])
    assert len(fig.axes) == 2 and fig.get_dpi() == 150
    arms = {"mixup": {"eta=0.1": dm_pages.ArmStats(s, ()), "eta=1": dm_pages.ArmStats(s, ())}}
    assert len(dm_pages.plot_arms([("eta", arms, {"mixup": "eta=0.1"}), ("xi, t", {}, {})]).axes) == 2
