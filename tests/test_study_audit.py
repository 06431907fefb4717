"""The audit's lambda-response table of learned runs, from their logged epoch moments."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mixrepro.config import RunConfig
from mixrepro.methods import mixblock
from mixrepro.study import audit


def moments(lams, means, gap):
    n = len(lams)
    mean = lambda xs: sum(xs) / n  # noqa: E731
    return {mixblock.LAMRESP_M: mean(means), mixblock.LAMRESP_LAM: mean(lams),
            mixblock.LAMRESP_M_LAM: mean([m * v for m, v in zip(means, lams)]),
            mixblock.LAMRESP_M2: mean([m * m for m in means]), mixblock.LAMRESP_LAM2: mean([v * v for v in lams]),
            mixblock.LAMRESP_ABS_GAP: gap, mixblock.MASK_SATURATED: 0.25}


def record(method, rows, **params):
    return SimpleNamespace(config=RunConfig(method=method, method_params=params), epochs=rows)


def test_final_lambda_response_reads_the_last_logged_epoch_and_the_runs_floor():
    lams = [0.2, 0.4, 0.6, 0.8]
    follows = moments(lams, [0.1 + 0.5 * v for v in lams], 0.05)  # slope 0.5, correlation 1
    blind = moments(lams, [0.5] * 4, 0.2)
    r = audit.final_lambda_response(record("automix", [{"epoch": 1, **blind}, {"epoch": 2, **follows},
                                                       {"epoch": 3, "test_top1": 50.0}]))
    assert r["epoch"] == 2 and r["correlation"] == pytest.approx(1.0) and r["slope"] == pytest.approx(0.5)
    assert r["abs_gap"] == 0.05 and r["floor"] == pytest.approx(0.1875, abs=1e-4) and r["saturated"] == 0.25
    first = audit.final_lambda_response(record("automix", [{"epoch": 1, **blind}]))
    assert math.isnan(first["correlation"]) and first["slope"] == pytest.approx(0.0)
    assert audit.final_lambda_response(record("mixup", [{"epoch": 1, "test_top1": 50.0}])) is None
    three = audit.final_lambda_response(record("adautomix", [{"epoch": 1, **follows}]))
    assert three["floor"] == pytest.approx(0.1445, abs=1e-3)  # AdAutoMix's three sources


def test_lambda_response_table_has_a_row_per_logged_run():
    lams = [0.2, 0.8]
    runs = {"automix": [record("automix", [{"epoch": 5, **moments(lams, [0.3, 0.7], 0.1)}])],
            "mixup": [record("mixup", [{"epoch": 5}])]}
    table = audit.lambda_response_table(runs)
    assert "| AutoMix | 0 | 5 | 1.00 | 0.67 | 0.100 | 0.187 | 0.25 |" in table and "Mixup" not in table
    assert audit.lambda_response_table({"mixup": runs["mixup"]}) == ""


def _summary(online_median, ema_median, ema_window11, online_best, ema_best, online_final):
    return {"online": {"median_last10": online_median, "best": online_best, "final": online_final},
            "ema": {"median_last10": ema_median, "median_ref_window11": ema_window11, "best": ema_best}}


def test_scoring_rules_read_each_rule_and_can_reorder_methods():
    runs = {"vanilla": [SimpleNamespace(summary=_summary(80, 79, 79.5, 81, 80, 80)),
                        SimpleNamespace(summary=_summary(82, 81, 81.5, 83, 82, 82))],
            "mixup": [SimpleNamespace(summary=_summary(80.5, 78, 78, 80.6, 84, 80.4))]}
    scores = audit.rule_scores(runs)
    assert scores["online, median of last 10"] == {"vanilla": 81, "mixup": 80.5}  # seed mean
    assert scores["best epoch of either head (reference logs)"] == {"vanilla": 82, "mixup": 84}
    assert audit.ranks(scores["online, median of last 10"]) == {"vanilla": 1, "mixup": 2}
    assert audit.kendall_tau(scores["online, median of last 10"], scores["EMA, median of last 10"]) == 1
    assert audit.kendall_tau(scores["online, median of last 10"],
                             scores["best epoch of either head (reference logs)"]) == -1
    assert audit.rank_changes(scores) == ["under 'best epoch of either head (reference logs)' the best is Mixup, "
                                          "not Vanilla"]
    table = audit.rules_markdown(scores, {"vanilla": 2, "mixup": 1})
    assert "| Vanilla | 2 | 81.00 (1) |" in table and "Kendall τ" in table and "-1.00" in table


def test_ece_rules_rank_lower_as_better_and_skip_unevaluated_runs():
    def evaluated(ece, reference):
        return SimpleNamespace(evaluations={"online": {"ece": {
            "ece_percent_10bins": ece, "ece_percent_10bins_reference_sorted_WRONG": reference}}})

    runs = {"vanilla": [evaluated(5.0, 4.0), SimpleNamespace(evaluations={})],  # seed 1 not evaluated yet
            "mixup": [evaluated(3.0, 4.5)], "cutmix": [SimpleNamespace(evaluations={})]}
    scores = audit.ece_rule_scores(runs)
    assert audit.ece_run_counts(runs) == {"vanilla": 1, "mixup": 1, "cutmix": 0}
    assert scores == {"ECE, 10 bins": {"vanilla": 5.0, "mixup": 3.0},
                      "reference code's ECE (sorted pairing)": {"vanilla": 4.0, "mixup": 4.5}}
    assert audit.rank_changes(scores, higher_is_better=False) == [
        "under 'reference code's ECE (sorted pairing)' the best is Vanilla, not Mixup"]


def _stored_run(store, config, median, correct):
    """A stored run whose scored network has ``median`` top-1 and gets ``correct`` (bool array) right."""
    import torch

    from mixrepro.evaluate.predictions import encode_predictions
    from mixrepro.results import RunRecord

    labels = torch.zeros(len(correct), dtype=torch.long)
    predicted = torch.where(torch.as_tensor(correct), 0, 1)
    summary = {net: {"median_last10": median} for net in ("online", "ema")}
    record = RunRecord(config=config, epochs=[{"epoch": 1, "test_top1": median}], summary=summary,
                       environment={}, predictions=encode_predictions({"online": predicted, "ema": predicted},
                                                                      labels))
    store.publish(record)


def test_training_arms_table_reads_pairs_tests_them_per_image_and_prices_missing_ones(tmp_path):
    import numpy as np

    from mixrepro.plans import AUDIT_ARMS
    from mixrepro.results import ResultsStore

    store = ResultsStore(tmp_path)
    saliency, floor = AUDIT_ARMS[0], AUDIT_ARMS[1]
    ours = np.ones(2000, dtype=bool)
    ours[:300] = False  # 85 % right
    worse = ours.copy()
    worse[300:500] = False  # the reference choice loses 200 images and wins none
    _stored_run(store, saliency.ours.config(0), 85.0, ours)
    _stored_run(store, saliency.reference.config(0), 75.5, worse)
    _stored_run(store, floor.ours.config(0), 80.0, ours)
    _stored_run(store, floor.reference.config(0), 80.1, ours)  # the same images right
    table, done = audit.training_arms_markdown(AUDIT_ARMS[:3], tmp_path, spread=0.5)
    assert done == 2
    lines = table.splitlines()
    assert "| 85.00 (online) | 75.50 | -9.50 | -10.00 | lowers top-1 beyond seed noise (> 1.41); " \
           "final networks per image: p = 0.000 |" in lines[2]
    assert "| +0.10 | +0.00 | within seed noise (<= 1.41); final networks per image: p = 1.000 |" in lines[3]
    assert "not run yet: both runs (about " in lines[4] and " h of one core)" in lines[4]
    unmeasured, _ = audit.training_arms_markdown(AUDIT_ARMS[:1], tmp_path, spread=None)
    assert "one run each; no seed spread measured yet" in unmeasured


def test_seed_spread_pools_the_methods_with_several_seeds():
    def run(top1, seed=0):
        return SimpleNamespace(summary={"online": {"median_last10": top1}}, predictions={},
                               config=SimpleNamespace(seed=seed))

    spread, methods = audit.seed_spread({"vanilla": [run(79.0), run(81.0, 1)], "mixup": [run(80.0), run(80.0, 1)],
                                         "cutmix": [run(80.5)]})
    assert methods == 2 and spread == pytest.approx(1.0)  # variances 2 and 0, one degree of freedom each
    assert audit.seed_spread({"cutmix": [run(80.5)]}) == (None, 0)


def test_the_cosine_floor_finding_needs_a_drop_beyond_seed_noise_and_shows_its_effect_on_margins(tmp_path):
    import numpy as np

    from mixrepro.plans import AUDIT_ARMS, Arm
    from mixrepro.results import ResultsStore

    store = ResultsStore(tmp_path)
    mixup, cutmix = audit.floor_arms(AUDIT_ARMS)
    assert (mixup.ours.method, cutmix.ours.method) == ("mixup", "cutmix") and mixup.reference.min_lr == 0.05
    right = np.ones(2000, dtype=bool)
    checks, runs, missing = audit.floor_checks(AUDIT_ARMS, tmp_path, spread=0.5)
    assert checks == [] and runs == [] and "Mixup with floor 0.05, seed 0" in missing
    assert audit.floor_text(AUDIT_ARMS, tmp_path) == ""
    _stored_run(store, mixup.ours.config(0), 80.0, right)
    _stored_run(store, mixup.reference.config(0), 77.5, right)  # 2.5 points lower: beyond 2√2 x 0.5 = 1.41
    _stored_run(store, cutmix.ours.config(0), 80.0, right)
    _stored_run(store, cutmix.reference.config(0), 79.0, right)  # 1 point: within seed noise
    checks, runs, missing = audit.floor_checks(AUDIT_ARMS, tmp_path, spread=0.5)
    assert [c.outcome for c in checks] == ["supports", "inconclusive"] and missing is None and len(runs) == 4
    assert checks[0].statement == "Mixup scores lower with the cosine floor 0.05 than with its own 0"
    assert checks[0].detectable == pytest.approx(2 * 2 ** 0.5 * 0.5)
    assert audit.floor_text(AUDIT_ARMS, tmp_path) == ("Mixup 80.00 → 77.50 with floor 0.05 (-2.50); "
                                                      "CutMix 80.00 → 79.00 with floor 0.05 (-1.00)")
    raised = audit.arm_check("x", {"difference": 3.0, "network": "online"}, 0.5, lowers=True)
    assert raised.outcome == "contradicts"  # beyond noise the other way
    assert audit.arm_check("x", {"difference": -3.0, "network": "online"}, None, lowers=True).outcome == "inconclusive"

    assert audit.floor_margins_markdown(AUDIT_ARMS, tmp_path) == ""  # no learned mixer's run yet
    _stored_run(store, Arm("automix").config(0), 81.0, right)
    lines = audit.floor_margins_markdown(AUDIT_ARMS, tmp_path).splitlines()
    assert lines[2] == "| AutoMix | Mixup | 81.00 | +1.00 | +3.50 |"
    assert lines[3] == "| AutoMix | CutMix | 81.00 | +1.00 | +2.00 |"


def test_online_minus_ema_text_gives_the_long_runs_gap_and_the_short_runs_range():
    long_run = SimpleNamespace(config=SimpleNamespace(epochs=30),
                               summary={"online": {"median_last10": 75.0}, "ema": {"median_last10": 44.5}})

    def short(online, ema):
        curves = {"online_top1": [10.0, online], "ema_top1": [9.0, ema]}
        return SimpleNamespace(config=SimpleNamespace(epochs=3), curve=curves.__getitem__)

    text = audit.online_minus_ema_text(long_run, {"mixup": short(60.0, 30.0), "automix": short(55.0, 30.5)})
    assert text == "online − EMA +30.50 (Mixup, 30 epochs); +24.50 to +30.00 (2 runs of 3 epochs)"
    assert audit.online_minus_ema_text(long_run, {}) == "online − EMA +30.50 (Mixup, 30 epochs)"
