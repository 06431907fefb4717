"""collect_runs: stored runs are loaded; runs that cannot be had are named with the reason, never raised."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mixrepro import study
from mixrepro.study.collect import DM_CE_PARAMS

STORE = Path(__file__).resolve().parent.parent / "notebooks" / "results"
SMOKE_MIXUP_DM = STORE / "cifar10-jpeg" / "mixup" / "be221a42cad1"  # smoke, DM(CE), ece + fgsm stored


def params(tmp_path, train=False, methods=("mixup",)):
    return study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=list(methods),
                                     seeds=None, train=train, results_dir=str(tmp_path))


def test_stored_runs_load_and_missing_ones_are_named_with_their_train_command(tmp_path, monkeypatch):
    import mixrepro.study.collect as collect

    monkeypatch.setattr(collect, "dataset_available", lambda name, root=None: True)  # the data is here
    shutil.copytree(SMOKE_MIXUP_DM, tmp_path / "cifar10-jpeg" / "mixup" / "be221a42cad1")
    p = params(tmp_path, methods=("mixup", "cutmix"))
    runs, reason = study.collect_runs(p, method_params=DM_CE_PARAMS)
    assert list(runs) == ["mixup"] and runs["mixup"][0].config.key() == "be221a42cad1"
    assert "not run (or not evaluated) yet at this budget: cutmix (seed 0)" in reason
    assert "mixrepro train --method cutmix" in reason


def test_a_stored_run_without_the_asked_evaluations_counts_as_not_run(tmp_path):
    shutil.copytree(SMOKE_MIXUP_DM, tmp_path / "cifar10-jpeg" / "mixup" / "be221a42cad1")
    runs, reason = study.collect_runs(params(tmp_path), method_params=DM_CE_PARAMS,
                                      evaluations=("ece", "corruption"))
    assert runs == {} and "mixup (seed 0)" in reason


def test_an_absent_dataset_is_named_with_how_to_get_it(tmp_path):
    runs, reason = study.collect_runs(params(tmp_path, train=True), dataset="cifar100")
    assert runs == {} and "dataset 'cifar100' is not available to the study" in reason and "mixrepro datasets" in reason


def test_pages_train_with_the_budgets_runtime_and_one_pinned_thread(tmp_path, monkeypatch):
    import mixrepro.runs
    import mixrepro.study.collect as collect
    from mixrepro.config import budget_runtime
    from mixrepro.plans import Plan

    monkeypatch.setattr(collect, "dataset_available", lambda name, root=None: True)
    seen = []
    monkeypatch.setattr(mixrepro.runs, "train_or_load", lambda config, **kwargs: seen.append(kwargs) or config)
    for budget in ("smoke", "cpu"):
        p = study.validate_parameters(budget=budget, dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                      seeds=[0], train=True, results_dir=str(tmp_path))
        study.collect_runs(p)
    smoke, cpu = ({k: kw[k] for k in ("amp", "channels_last", "threads")} for kw in seen)
    assert smoke == {"amp": None, "channels_last": None, "threads": 1}  # fp32 on the CPU: the exact path
    assert cpu == {"amp": True, "channels_last": True, "threads": 1} == budget_runtime("cpu")
    assert Plan("t", "test", ()).runtime == cpu  # a page at budget cpu trains the bits the study's sweep does


def test_joined_reasons_stay_pending_only_when_every_part_is_pending():
    from mixrepro.study.collect import PendingRuns, join_reasons
    from mixrepro.study.verdicts import Check, judge

    mce, dm = PendingRuns("mixup seeds 1, 2"), PendingRuns("mixup DM(CE) seeds 1, 2", ["samix"])
    joined = join_reasons([mce, None, dm, mce])
    assert joined == "mixup seeds 1, 2; mixup DM(CE) seeds 1, 2" and joined.methods_without_runs == ("samix",)
    assert join_reasons([mce, "the data is absent"]) == "mixup seeds 1, 2; the data is absent"
    assert not isinstance(join_reasons([mce, "the data is absent"]), PendingRuns)
    assert join_reasons([None, ""]) is None
    check = [Check("a higher than b", "supports", "detail")]
    assert judge("x", "claim", "src", "cpu", check, untested_reason=join_reasons([mce, mce])).provisional
    assert judge("x", "claim", "src", "cpu", check, untested_reason=joined).verdict == "not tested here"


def test_a_claim_about_some_methods_waits_only_for_their_runs(tmp_path):
    from mixrepro.errors import InvalidParameterError
    from mixrepro.study.collect import PendingRuns, join_reasons

    shutil.copytree(SMOKE_MIXUP_DM, tmp_path / "cifar10-jpeg" / "mixup" / "be221a42cad1")
    p = study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18",
                                  methods=["mixup", "cutmix", "vanilla"], seeds=[0, 1], train=False,
                                  results_dir=str(tmp_path))
    _, page = study.collect_runs(p, method_params=DM_CE_PARAMS)
    assert "cutmix" in page and "vanilla" in page  # the page's reason names every method's missing runs
    # a claim's reason, derived from the page's one collect, is the one a collect of its methods alone gives
    # (their runs named in the page's method order)
    for methods in (["mixup"], ["cutmix"], ["mixup", "cutmix"], ["mixup", "vanilla"]):
        alone = study.collect_runs(p, methods=methods, method_params=DM_CE_PARAMS)[1]
        among = study.missing_among(page, methods)
        assert among == alone and type(among) is type(alone) is PendingRuns, methods
        assert among.methods_without_runs == alone.methods_without_runs
    assert "mixup (seed 1)" in study.missing_among(page, ["vanilla", "mixup"])  # seed 0 is stored
    assert study.missing_among(page, ["fmix"]) is None and study.missing_among(None, ["mixup"]) is None
    _, absent = study.collect_runs(p, dataset="cifar100")  # no data: never pending, restricted alike
    assert study.missing_among(absent, ["cutmix"]) == study.collect_runs(p, methods=["cutmix"], dataset="cifar100")[1]
    assert not isinstance(study.missing_among(absent, ["cutmix"]), PendingRuns)
    for not_from_collect in (join_reasons([page, page]), "the data is absent"):
        with pytest.raises(InvalidParameterError, match="collect_runs"):
            study.missing_among(not_from_collect, ["mixup"])




def test_a_missing_run_is_sent_to_the_sweep_plan_that_trains_it(tmp_path):
    """Study runs to `sweep study`, the pages' ablation arms to `sweep pages`, a run no plan holds to its own
    train command: a reader following the reason never waits on a sweep that skips the run."""
    from mixrepro.plans import pages_plan

    def cpu(method, **fields):
        return study.validate_parameters(budget="cpu", dataset="cifar10-jpeg", model="resnet18", methods=[method],
                                         seeds=[0], train=False, results_dir=str(tmp_path), **fields)

    _, reason = study.collect_runs(cpu("mixup"))
    assert "`mixrepro sweep study` trains them, e.g. `mixrepro train --method mixup" in reason
    arm = next(c for c in pages_plan().configs if c.method == "samix" and c.seed == 0)
    _, reason = study.collect_runs(cpu("samix"), method_params=arm.method_params)
    assert "`mixrepro sweep pages` trains them" in reason and "sweep study" not in reason
    _, reason = study.collect_runs(cpu("mixup"), method_params={"alpha": 0.123})  # no page asks for it
    assert "no sweep plan holds mixup (seed 0): `mixrepro train --method mixup" in reason and "sweep" not in \
        reason.split("no sweep plan")[0]
    _, reason = study.collect_runs(params(tmp_path, methods=("cutmix",)))  # smoke: the sweeps train cpu runs only
    assert "no sweep plan holds cutmix (seed 0)" in reason
