"""The study overview: arms of a plan with their finished runs, the table, and the equal-compute pairs."""
from __future__ import annotations

import statistics
from pathlib import Path

from mixrepro import plans
from mixrepro.study import overview
from mixrepro.study.scores import scored_top1

STORE = Path(__file__).resolve().parent.parent / "notebooks" / "results"


def test_arms_group_a_plans_seeds_and_label_other_epochs():
    arms = overview.plan_arms(plans.get_plan("pilot"), STORE)  # finished: every pilot run is committed
    assert [(a.label, a.planned, len(a.records)) for a in arms] == [
        ("Vanilla, 24 epochs", 2, 2), ("Mixup, 24 epochs", 2, 2), ("Vanilla", 2, 2), ("Mixup", 2, 2)]
    table = overview.overview_table(arms)
    assert "| Vanilla | 2/2 | **79.75\u00a0±\u00a00.51** |" in table  # 79.385 and 80.105, the pilot's small-data runs
    assert table.count("**") == 2 * 4  # one bold top-1 per arm: the scored network's (online for these)


def test_runs_without_the_plans_evaluations_do_not_count_as_finished():
    pilot = plans.get_plan("pilot")
    evaluated = plans.Plan("p", "test", pilot.configs, evaluations=("an-evaluation-no-run-has",))
    assert all(not a.records for a in overview.plan_arms(evaluated, STORE))


def test_equal_compute_pairs_name_the_baseline_arm_each_learned_method_buys():
    pairs = overview.equal_compute_pairs()
    report = plans.load_bench_report()
    assert ("automix", "mixup", f"Mixup, {plans.equal_compute_epochs(120, report, 'automix', 'mixup')} epochs") in pairs
    assert len(pairs) == 4
    labels = {a.label for a in overview.plan_arms(plans.get_plan("study"), STORE)}
    assert {label for _, _, label in pairs} <= labels  # each pair's baseline is an arm of the plan


def test_audit_arms_are_rows_of_their_own_not_extra_seeds_of_the_method():
    arms = {a.label: a for a in overview.plan_arms(plans.get_plan("study"), STORE)}
    assert arms["Mixup"].planned == 3 and arms["SaliencyMix"].planned == 3 and arms["AdAutoMix"].planned == 3
    assert arms["Mixup, cosine floor 0.05"].planned == 1
    assert arms["SaliencyMix, saliency_input=reference-float"].planned == 1
    assert arms["AdAutoMix, cosine_sign=reference"].planned == 1 and arms["AdAutoMix, lam_margin=0.03"].planned == 1


def test_pools_table_has_a_row_per_metric_and_the_vanilla_pair_in_its_spread():
    from mixrepro.study.pooled import pool_over_study
    from mixrepro.study.scores import run_top1

    table = overview.pools_table(STORE)
    assert [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]] == [
        label for label, _, _ in overview.POOLED_METRICS]
    # Vanilla's two committed seeds (79.385, 80.105, the pilot's small-data runs) are in the pool: an arm
    # with seeds 0 and 1 adds half its squared (seed 1 - seed 0 - fitted seed effect) to the residual sum.
    pool = pool_over_study(STORE, "online top-1", lambda r: run_top1(r, "online"))
    assert "Vanilla" in pool.arms and pool.dof >= 1
    effect = dict(pool.seed_effects).get(1, 0.0)
    assert pool.variance * pool.dof >= (80.105 - 79.385 - effect) ** 2 / 2 - 1e-9


def test_equal_compute_checks_compare_every_seed_by_the_pool_once_the_arms_have_landed(tmp_path):
    from landed_store import landed_store

    from mixrepro.study.scores import SCORED_TOP1, scored_top1
    from mixrepro.study.pooled import pool_over_study

    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = overview.plan_arms(plans.get_plan("study"), tmp_path / "results")
    checks, reason = overview.equal_compute_checks(arms)
    assert reason is None and len(checks) == len(overview.equal_compute_pairs()) == 4
    pool = pool_over_study(tmp_path / "results", SCORED_TOP1, scored_top1)
    for (learned, _, baseline_label), check in zip(overview.equal_compute_pairs(), checks):
        if pool.covers(baseline_label) and pool.covers(overview.method_label(learned)):
            assert "means over 3 and 1 seeds" in check.detail  # every seed of the learned method
        else:
            # an arm the pool leaves out (its seeds spread more) is compared on the seeds both arms have
            assert any(word in check.detail for word in ("paired", "every network", "on one seed pair"))
    assert any("means over 3 and 1 seeds" in check.detail for check in checks)
    text = overview.equal_compute_text(arms)  # the ledger's 'ours': every pair, the learned method's seeds
    assert text.count(" vs ") == len(overview.equal_compute_pairs())
    assert "AutoMix " in text and "(n=3)" in text and "Mixup, " in text


def test_a_partly_landed_equal_compute_arm_gives_a_provisional_verdict_naming_the_pairs_to_come(tmp_path):
    from landed_store import landed_store

    from mixrepro.study.verdicts import judge, provisional

    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = overview.plan_arms(plans.get_plan("study"), tmp_path / "results")
    _, _, dropped_label = overview.equal_compute_pairs()[-1]
    for arm in arms:
        if arm.label == dropped_label:
            arm.records.clear()  # this baseline has not landed yet
    checks, reason = overview.equal_compute_checks(arms)
    assert len(checks) == len(overview.equal_compute_pairs()) - 1 and dropped_label in reason
    assert provisional(reason, checks, "cpu")
    verdict = judge("X", "claim", "src", "cpu", checks, untested_reason=reason, kind="audit")
    assert verdict.provisional and dropped_label in verdict.reason


def test_spread_keeps_labels_a_gap_apart_around_where_they_were():
    placed = overview.spread([1.0, 1.01, 1.02, 3.0], gap=0.1)
    assert all(b - a >= 0.1 - 1e-12 for a, b in zip(placed, placed[1:]))
    assert abs(sum(placed) - (1.0 + 1.01 + 1.02 + 3.0)) < 1e-9  # centred: the column's mean does not move
    assert overview.spread([1.0, 2.0], gap=0.1) == [1.0, 2.0]  # far enough apart already


def test_equal_compute_figure_puts_each_arm_at_its_bench_compute_and_joins_a_baselines_arms(tmp_path):
    from landed_store import landed_store

    from mixrepro.plans import run_hours

    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = overview.plan_arms(plans.get_plan("study"), tmp_path / "results")
    ax = overview.plot_equal_compute(arms).axes[0]
    drawn = [a for a in arms if overview.is_method_arm(a)]
    assert {a.label for a in drawn} >= {"Mixup", "Mixup, 326 epochs", "AutoMix", "CutMix + DM(CE)"}
    assert not any("cosine floor" in a.label or "=" in a.label for a in drawn)  # the audit's arms are left out
    means = [c for c in ax.collections  # the mean markers (the seeds' dots are smaller)
             if hasattr(c, "get_sizes") and len(c.get_offsets()) == 1 and c.get_sizes()[0] == overview.MEAN_SIZE]
    assert sorted(float(c.get_offsets()[0][0]) for c in means) == sorted(run_hours(a.records[0].config) for a in drawn)
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    # Mixup's and CutMix's 120-epoch arm joined to their longer runs
    assert len(dashed) == len(plans.EQUAL_COMPUTE["baselines"])
    mixup_x = sorted(run_hours(a.records[0].config) for a in drawn if a.method == "mixup"
                     and not a.records[0].config.method_params)
    assert list(dashed[0].get_xdata()) == mixup_x  # 120, 326 and 506 epochs
    assert len(mixup_x) == 1 + sum(b == "mixup" for _, b, _ in overview.equal_compute_pairs())
    assert {t.get_text() for t in ax.texts} >= {a.label for a in drawn} | {"AutoMix's compute", "AdAutoMix's compute"}


def test_length_gain_rows_set_each_longer_baseline_run_against_its_own_120_epoch_arm(tmp_path):
    from landed_store import landed_store

    assert overview.length_gain_markdown([]) == "No longer run of a baseline has finished yet."
    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = overview.plan_arms(plans.get_plan("study"), tmp_path / "results")
    rows = overview.length_gain_markdown(arms).splitlines()[2:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        label for baseline in ("mixup", "cutmix") for label in
        sorted((label for _, b, label in overview.equal_compute_pairs() if b == baseline),
               key=lambda label: int(label.split(", ")[1].split()[0]))]
    by_label = {a.label: a for a in arms}
    first = rows[0].split(" | ")
    gain = (statistics.fmean(map(scored_top1, by_label[first[0].lstrip("| ")].records))
            - statistics.fmean(map(scored_top1, by_label["Mixup"].records)))
    assert first[3].rstrip(" |") == f"{gain:+.2f}"


def test_length_curves_draw_each_finished_length_of_a_baseline_with_its_seed_mean(tmp_path):
    from dataclasses import replace

    from landed_store import landed_store

    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = {m: overview.length_arms(m, tmp_path / "results") for m in plans.EQUAL_COMPUTE["baselines"]}
    arms["cutmix"][-1] = replace(arms["cutmix"][-1], records=[])  # a length still training: left out
    fig = overview.plot_length_curves(arms)
    assert len(fig.axes) == len(arms)
    for ax, (method, method_arms) in zip(fig.axes, arms.items()):
        finished = [a for a in method_arms if a.records]
        assert [line.get_label() for line in ax.lines] == [
            f"{a.config.epochs} epochs ({len(a.records)} seed{'s' if len(a.records) > 1 else ''})" for a in finished]
        assert [line.get_linestyle() for line in ax.lines] == ["-", "--", ":", "-."][:len(finished)]
        column = f"{overview.scored_network(method)}_top1"
        finals = [statistics.fmean(r.curve(column)[-1] for r in a.records) for a in finished]
        assert [line.get_ydata()[-1] for line in ax.lines] == finals  # each line ends at its seed mean
        assert ax.get_ylim()[0] == min(finals) - overview.LENGTH_Y_SPAN
    assert len(fig.axes[1].lines) == len(arms["cutmix"]) - 1


def test_equal_compute_metrics_set_each_pair_side_by_side_and_bold_the_learned_methods_wins(tmp_path):
    from landed_store import landed_store

    assert overview.equal_compute_metrics_markdown([]) == "No equal-compute pair has runs on both sides yet."
    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    arms = overview.plan_arms(plans.get_plan("study"), tmp_path / "results")
    rows = overview.equal_compute_metrics_markdown(arms).splitlines()[2:]
    assert len(rows) == len(overview.equal_compute_pairs())
    by_label = {a.label: a for a in arms}
    learned, _, baseline_label = overview.equal_compute_pairs()[0]
    a, b = by_label[overview.method_label(learned)], by_label[baseline_label]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[0].startswith(f"{a.label} ({len(a.records)} seeds) vs {baseline_label}")
    for cell, (_, name, key) in zip(cells[1:], (("top-1", None, None), *overview.METRICS)):
        mean_a = statistics.fmean(overview.arm_values(a, name, key))
        mean_b = statistics.fmean(overview.arm_values(b, name, key))
        assert cell.strip("*") == f"{mean_a:.2f} vs {mean_b:.2f} ({mean_a - mean_b:+.2f})"
        learned_better = mean_a < mean_b if name in ("ece", "fgsm") else mean_a > mean_b
        assert cell.startswith("**") == learned_better  # lower ECE and FGSM error are the better side


def test_length_calibration_rows_give_each_finished_length_its_ece_and_signed_gap(tmp_path):
    from landed_store import landed_store

    from mixrepro.study.scores import confidence_gap

    assert overview.length_calibration_markdown({}) == "No method of the study has runs of several lengths yet."
    landed_store(STORE, tmp_path / "results", [plans.study_plan()])
    lengths = overview.baseline_lengths(tmp_path / "results")
    assert list(lengths) == list(plans.EQUAL_COMPUTE["baselines"])
    assert all(a.config.epochs == overview.BUDGET_EPOCHS for a in (arms[0] for arms in lengths.values()))
    rows = overview.length_calibration_markdown(lengths).splitlines()[2:]
    assert len(rows) == sum(len(arms) for arms in lengths.values())
    longest = lengths["cutmix"][-1]
    (record,) = longest.records
    row = next(r for r in rows if r.startswith(f"| CutMix, {longest.config.epochs} epochs |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:] == ["1", f"{record.evaluations['online']['ece']['ece_percent_15bins']:.2f}",
                         f"{confidence_gap(record.evaluations['online']['ece']):.2f}"]
