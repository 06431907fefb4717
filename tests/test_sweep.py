"""Sweep plans (which runs, in which order) and the sweep worker (claims, train, evaluate, resume)."""
from __future__ import annotations

import json
import os

import pytest
import torch

from doubles import install_doubles, sweep_args, tiny_config
from mixrepro import plans, sweep
from mixrepro.config import RunConfig, config_for_budget
from mixrepro.errors import InvalidParameterError, MixreproError, UnknownNameError
from mixrepro.results import ResultsStore


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_bench(**seconds) -> dict:
    return {"rows": [{"method": name, "seconds_per_step": s} for name, s in seconds.items()]}


BENCH = fake_bench(vanilla=0.24, mixup=0.25, cutmix=0.2, automix=0.75, adautomix=1.0)
# BENCH with every method timed: the plan orders the seed-0 table by these step times.
FULL_BENCH = fake_bench(vanilla=0.24, mixup=0.25, cutmix=0.2, automix=0.75, adautomix=1.0, manifoldmix=0.23,
                        saliencymix=0.23, fmix=0.24, resizemix=0.23, puzzlemix=0.6, samix=0.9)


def test_pilot_keys_are_the_committed_runs_keys():
    # The pilot's runs are in the store under these keys; a change to the budgets or configs
    # that moved them would orphan the committed runs.
    keys = [c.key() for c in plans.get_plan("pilot").configs]
    assert keys == ["065ecd05787a", "01706de7901a", "dec643602f0b", "bae6eb1e3950",
                    "76d1e928dcee", "68987ad437f7", "a48632d82683", "002adbae63cf"]


def test_cpu_budget_is_the_pilots_small_data_setting():
    pilot_small = plans.get_plan("pilot").configs[2]
    assert config_for_budget("cpu", method="vanilla", dataset="cifar10-jpeg", seed=0) == pilot_small


def test_equal_compute_epochs_follow_the_measured_step_times():
    assert plans.equal_compute_epochs(120, BENCH, "automix", "mixup") == 360
    assert plans.equal_compute_epochs(120, BENCH, "adautomix", "cutmix") == 600
    with pytest.raises(InvalidParameterError, match="samix"):
        plans.equal_compute_epochs(120, BENCH, "samix", "mixup")


def test_study_plan_order_and_content():
    configs = plans.study_configs(FULL_BENCH)
    assert len(configs) == len({c.key() for c in configs}) == 14 + 3 + 20 + 4 + 8 + 2
    seed0 = configs[:14]
    assert {c.seed for c in seed0} == {0} and configs[0].method == "vanilla"  # a full table first
    assert {(c.method, c.method_params.get("loss")) for c in seed0} >= {
        ("automix", "dm_ce"), ("mixup", "dm_ce"), ("cutmix", "dm_ce"), ("adautomix", None), ("fmix", None)}
    methods0 = [c.method for c in seed0]  # cheapest first: every static mixer before PuzzleMix and the learned ones
    assert set(methods0[:9]) == {"vanilla", "mixup", "cutmix", *plans.OTHER_STATIC}
    assert methods0[9:] == ["puzzlemix", "automix", "automix", "samix", "adautomix"]
    cheap_audit = configs[14:17]  # the audit's cheap training arms, right after the seed-0 table
    assert {(c.method, c.min_lr, tuple(c.method_params.items())) for c in cheap_audit} == {
        ("saliencymix", None, (("saliency_input", "reference-float"),)), ("mixup", 0.05, ()), ("cutmix", 0.05, ())}
    later_seeds = configs[17:37]
    assert {c.seed for c in later_seeds} == {1, 2}
    assert not {c.method for c in later_seeds} & set(plans.OTHER_STATIC)  # headline methods first
    equal = configs[37:41]
    assert {(c.method, c.epochs) for c in equal} == {("mixup", 360), ("cutmix", 450), ("mixup", 480),
                                                      ("cutmix", 600)}
    assert {c.method for c in configs[41:49]} == set(plans.OTHER_STATIC)
    assert [c.method for c in configs[49:]] == ["adautomix", "adautomix"]  # the costly audit arms last
    assert all(c.epochs == 120 and c.test_subset is None and c.ema_schedule == "step-scaled"
               for c in configs[:37] + configs[41:])


def test_every_audit_arm_differs_from_its_study_run_in_one_choice_only():
    study_keys = {c.key() for c in plans.study_configs(FULL_BENCH)}
    for arm in plans.AUDIT_ARMS:
        ours, reference = arm.ours.config(0), arm.reference.config(0)
        assert ours.key() in study_keys and reference.key() in study_keys and ours.key() != reference.key()
        changed = {k for k, v in ours.to_dict().items() if reference.to_dict()[k] != v}
        assert len(changed) == 1, (arm.finding, changed)


def test_the_committed_bench_report_gives_the_study_plan():
    plan = plans.get_plan("study")
    assert plan.evaluations == plans.STUDY_EVALUATIONS and plan.runtime["threads"] == 1
    assert plan.configs[0].key() == "dec643602f0b"  # the pilot's Vanilla seed 0 is the study's
    with pytest.raises(UnknownNameError, match="pilot"):
        plans.get_plan("nope")


def test_claims_exclude_live_workers_and_free_dead_ones(cache):
    config = tiny_config()
    first = sweep.try_claim(config)
    assert first is not None and first.read_text() == str(os.getpid())
    assert sweep.try_claim(config) is None  # held by this (live) process
    first.write_text("999999999")  # a worker that no longer exists
    again = sweep.try_claim(config)
    assert again is not None and again.read_text() == str(os.getpid())


def test_worker_trains_then_adds_missing_evaluations_and_skips_done_runs(tmp_path, cache, monkeypatch):
    import mixrepro.evaluate

    install_doubles(monkeypatch)
    seen = []

    def fake_run_evaluations(model, test_x, test_y, names, device, generator, options=None):
        seen.append((tuple(names), options))
        return {name: {"value": float(torch.rand((), generator=generator))} for name in names}

    monkeypatch.setattr(mixrepro.evaluate, "run_evaluations", fake_run_evaluations, raising=False)
    configs = (tiny_config(seed=0, epochs=1), tiny_config(seed=1, epochs=1))
    plain = plans.Plan("t", "test", configs, runtime={})
    assert sweep.run_worker(plain, results_root=tmp_path) == 2
    store = ResultsStore(tmp_path)
    evaluated = plans.Plan("t", "test", configs, runtime={}, evaluations=("ece",),
                           evaluation_options={"ece": {"bins": [10]}})
    assert [sweep.run_state(evaluated, store, c) for c in configs] == ["evaluate", "evaluate"]
    assert sweep.run_worker(evaluated, results_root=tmp_path) == 2
    assert seen == [(("ece",), {"ece": {"bins": [10]}})] * 4  # two runs x two networks, options passed
    assert [sweep.run_state(evaluated, store, c) for c in configs] == ["done", "done"]
    assert sweep.run_worker(evaluated, results_root=tmp_path) == 0


def test_optional_evaluations_run_only_where_the_final_weights_are_at_hand(tmp_path, cache, monkeypatch):
    import mixrepro.evaluate
    from mixrepro.training.checkpoint import checkpoint_path

    install_doubles(monkeypatch)
    seen = []

    def fake_run_evaluations(model, test_x, test_y, names, device, generator, options=None):
        seen.extend(names)
        return {name: {"value": 1.0} for name in names}

    monkeypatch.setattr(mixrepro.evaluate, "run_evaluations", fake_run_evaluations, raising=False)
    old, new = tiny_config(seed=0, epochs=1), tiny_config(seed=1, epochs=1)
    assert sweep.run_worker(plans.Plan("t", "test", (old,), runtime={}, evaluations=("ece",)),
                            results_root=tmp_path) == 1
    checkpoint_path(old).unlink()  # trained and evaluated on another machine: stored, its weights not here
    seen.clear()
    plan = plans.Plan("t", "test", (old, new), runtime={}, evaluations=("ece",), optional_evaluations=("confidence",))
    store = ResultsStore(tmp_path)
    assert sweep.evaluations_to_run(plan, store, new) == ("ece", "confidence")  # training leaves its weights
    assert sweep.evaluations_to_run(plan, store, old) == ("ece",)  # never worth a retrain
    assert sweep.run_worker(plan, results_root=tmp_path) == 1  # the old run is done: no retrain for confidence
    assert seen == ["ece", "ece", "confidence", "confidence"]  # the new run's two networks
    assert [sweep.run_state(plan, store, c) for c in (old, new)] == ["done", "done"]
    assert "confidence" in store.load(new).evaluations["ema"] and "confidence" not in store.load(old).evaluations["ema"]


def test_a_failing_run_does_not_stop_the_worker(tmp_path, cache, monkeypatch, capsys):
    import mixrepro.runs
    from mixrepro.errors import MixreproError

    install_doubles(monkeypatch)
    real = mixrepro.runs.train_or_load
    bad = tiny_config(seed=0, epochs=1)

    def flaky(config, **kwargs):
        if config == bad:
            raise MixreproError("evaluation broke")
        return real(config, **kwargs)

    monkeypatch.setattr(mixrepro.runs, "train_or_load", flaky)
    plan = plans.Plan("t", "test", (bad, tiny_config(seed=1, epochs=1)), runtime={})
    assert sweep.run_worker(plan, results_root=tmp_path) == 1
    assert "failed, moving on: evaluation broke" in capsys.readouterr().err
    assert not list((cache / "sweep-claims").glob("*.claim"))  # claims released either way


def test_half_trained_runs_come_before_plan_order(tmp_path, cache):
    from mixrepro.training.checkpoint import checkpoint_path

    configs = tuple(tiny_config(seed=s, epochs=1) for s in range(3))
    plan = plans.Plan("t", "test", configs, runtime={})
    store = ResultsStore(tmp_path)
    assert sweep.pending(plan, store) == list(configs)
    path = checkpoint_path(configs[2])  # a worker was killed mid-run
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert sweep.pending(plan, store) == [configs[2], configs[0], configs[1]]
    assert [sweep.half_trained(store, c) for c in configs] == [False, False, True]


def test_list_names_each_runs_state(tmp_path, cache, monkeypatch, capsys):
    from mixrepro.training.checkpoint import checkpoint_path

    configs = tuple(tiny_config(seed=s, epochs=1) for s in range(2))
    monkeypatch.setattr(sweep, "get_plan", lambda name: plans.Plan(name, "test", configs, runtime={}))
    path = checkpoint_path(configs[1])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert sweep.cli_sweep(sweep_args("t", "--list", "--out", str(tmp_path))) == 0
    *rows, total, evaluations = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in rows] == ["train", "resume"]
    assert total == "2 runs to go: about 0.0 hours of one core by the bench report (2 unpriced)"  # no 'tiny' row
    assert evaluations.startswith("final evaluations: no stored run")


def timed_record(scoring_s: float, evaluation_s: dict, threads: int = 1):
    """A cpu-budget study run whose scored epochs took ``scoring_s`` and whose evaluations ``evaluation_s``."""
    from types import SimpleNamespace

    config = config_for_budget("cpu", method="mixup", dataset="cifar10-jpeg", seed=0, test_subset=None)
    epochs = [{"online_top1": None, "eval_time_s": None}] + [{"online_top1": 80.0, "eval_time_s": scoring_s}] * 3
    times = {name: {"seconds": s, "device": "cpu", "threads": 1} for name, s in evaluation_s.items()}
    return SimpleNamespace(config=config, epochs=epochs, evaluation_times=times,
                           environment={"runtime": {"device_type": "cpu", "threads": threads}})


def test_evaluation_costs_are_measured_in_units_of_each_runs_own_test_scoring():
    # Scoring 10,000 images is 62 Vanilla steps: 6.2 s means 0.1 s a step; ECE on the 10,000 images in 9.2 s
    # is then 92 steps, corruption on its 2,000-image subset in 143.4 s 1,434 steps = 7,170 per 10,000 images.
    fast = timed_record(6.2, {"ece": 9.2, "corruption": 143.4})
    slow = timed_record(12.4, {"ece": 20.0})  # a machine half as fast, ECE a little dearer there
    two_threads = timed_record(3.1, {"ece": 1.0}, threads=2)  # another runtime: not comparable, left out
    measured = plans.measured_evaluation_steps([fast, slow, two_threads])
    assert measured["corruption"] == (pytest.approx(7170), 1)
    assert measured["ece"] == (pytest.approx((92 + 100) / 2), 2)
    text = sweep.evaluation_drift_text([fast, slow])
    assert "ece 96 [92] (2 runs)" in text and "corruption 7170 [7170] (1 run)" in text


def test_list_lines_name_every_override_of_an_arm():
    arms = {a.finding: a.reference.config(0) for a in plans.AUDIT_ARMS}
    lines = [sweep.describe(config) for config in arms.values()]
    assert any("saliency_input=reference-float" in line for line in lines)
    assert sum("min_lr=0.05" in line for line in lines) == 2  # the cosine-floor arms of Mixup and CutMix


def test_worker_restores_lost_weights_by_a_verified_retrain(tmp_path, cache, monkeypatch, capsys):
    import mixrepro.evaluate
    from mixrepro.training.checkpoint import checkpoint_path
    from test_verify import _tamper

    install_doubles(monkeypatch)
    monkeypatch.setattr(mixrepro.evaluate, "run_evaluations", raising=False,
                        value=lambda model, x, y, names, *a, **k: {name: {"value": 1.0} for name in names})
    configs = (tiny_config(seed=0, epochs=1), tiny_config(seed=1, epochs=1))
    assert sweep.run_worker(plans.Plan("t", "test", configs, runtime={"threads": 1}), results_root=tmp_path) == 2
    store = ResultsStore(tmp_path)
    for config in configs:  # a new machine: the stored runs are here, their weights are not
        checkpoint_path(config).unlink()
    stored = (store.run_dir(configs[0]) / "epochs.csv").read_bytes()
    _tamper(store.run_dir(configs[1]), "train_loss", 1e-9)  # a run its retrain cannot reproduce
    evaluated = plans.Plan("t", "test", configs, runtime={"threads": 1}, evaluations=("ece",))
    assert sweep.run_worker(evaluated, results_root=tmp_path) == 1
    assert [sweep.run_state(evaluated, store, c) for c in configs] == ["done", "evaluate"]
    assert (store.run_dir(configs[0]) / "epochs.csv").read_bytes() == stored  # the stored run is untouched
    assert checkpoint_path(configs[0]).is_file() and not checkpoint_path(configs[1]).exists()
    captured = capsys.readouterr()
    assert "reproduced bit for bit" in captured.out and "NOT identical" in captured.out
    assert f"cannot evaluate {configs[1].key()}" in captured.err


def test_cpu_seeds_are_the_seeds_the_study_plan_trains_each_setting_with():
    configs = plans.study_configs(FULL_BENCH)
    by_setting: dict[str, set] = {}
    for c in configs:
        by_setting.setdefault(c.replace(seed=0).key(), set()).add(c.seed)
    for c in configs:
        assert set(plans.cpu_seeds(c)) == by_setting[c.replace(seed=0).key()], c
        assert plans.in_study_plan(c) or c.epochs != 120  # the equal-compute arms: pages never ask for them
    assert plans.cpu_seeds(configs[0]) == (0, 1, 2)  # Vanilla: three seeds
    arm = config_for_budget("cpu", method="automix", dataset="cifar10-jpeg", method_params={"clean_ce": False})
    assert plans.cpu_seeds(arm) == (0,) and not plans.in_study_plan(arm.replace(seed=1))  # an ablation arm: one


def test_ablation_arms_collect_one_seed_at_budget_cpu_unless_the_notebook_names_seeds():
    from mixrepro import study
    from mixrepro.study.parameters import arm_parameters

    def page(budget, seeds=None):
        return study.validate_parameters(budget=budget, dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                         seeds=seeds)

    cpu = page("cpu")
    assert cpu.seeds == (0, 1, 2) and not cpu.seeds_given
    assert arm_parameters(cpu, "mixup").seeds == (0, 1, 2)  # the study's own run: its seeds
    assert arm_parameters(cpu, "mixup", method_params={"alpha": 2.0}).seeds == (0,)
    assert arm_parameters(cpu, "mixup", train_subset=1500).seeds == (0,)  # a sweep point (Table A8's fractions)
    assert arm_parameters(page("cpu", [0, 1]), "mixup", method_params={"alpha": 2.0}).seeds == (0, 1)
    assert arm_parameters(page("paper"), "mixup", method_params={"alpha": 2.0}).seeds == (0, 1, 2)


def test_a_deadline_starts_only_runs_that_can_finish_before_it(tmp_path, cache, monkeypatch, capsys):
    import time

    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36, vanilla=0.2))
    configs = tuple(tiny_config(seed=seed, epochs=1, train_subset=160, test_subset=32) for seed in (0, 1))
    store = ResultsStore(tmp_path)
    training = 1 * 10 * 0.36 / 3600  # one epoch of 160 images at batch 16
    scoring = 32 * plans.SCORING_VANILLA_STEPS_PER_IMAGE * 0.2 / 3600  # its one epoch is scored
    assert sweep.hours_left(store, configs[0]) == pytest.approx(training + scoring)
    assert sweep.fits(store, configs[0], None, 1.25) == (True, "")
    ok, why = sweep.fits(store, configs[0], time.time() + 1.0, 1.25)  # a second left
    assert not ok and "margin" in why
    plan = plans.Plan("t", "test", configs, runtime={})
    assert sweep.run_worker(plan, results_root=tmp_path, deadline=time.time() + 1.0) == 0
    assert capsys.readouterr().out.count("not starting") == 2
    held = sweep.claim_dir() / f"{configs[0].key()}.claim"
    held.write_text(str(os.getppid()))  # another live worker trains the first run: not ours to report
    assert sweep.run_worker(plan, results_root=tmp_path, deadline=time.time() + 1.0) == 0
    assert capsys.readouterr().out.count("not starting") == 1 and held.read_text() == str(os.getppid())
    held.unlink()
    assert not list(sweep.claim_dir().glob("*.claim"))  # the claim taken to price a run is released
    assert sweep.run_worker(plan, results_root=tmp_path, deadline=time.time() + 3600) == 2
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(vanilla=0.2))  # cannot price 'tiny'
    assert sweep.fits(store, tiny_config(seed=2, epochs=1, test_subset=32), time.time() + 3600, 1.0) == (
        False, "the bench report cannot price it")


def test_hours_left_counts_what_a_checkpoint_has_done(tmp_path, cache, monkeypatch):
    from mixrepro.training import fit
    from mixrepro.training.loop import TrainingInterrupted

    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36, vanilla=0.2))
    config = tiny_config(seed=0, epochs=2, train_subset=64, test_subset=32)  # 4 steps of 16 per epoch
    with pytest.raises(TrainingInterrupted):  # killed in its second epoch
        fit(config, results_root=tmp_path, progress=False, stop_after_step=5)
    training = 2 * 4 * 0.36 / 3600
    scoring = 2 * 32 * plans.SCORING_VANILLA_STEPS_PER_IMAGE * 0.2 / 3600  # both epochs are scored
    fgsm = 32 * plans.EVALUATION_VANILLA_STEPS_PER_IMAGE["fgsm"] * 0.2 / 3600
    store = ResultsStore(tmp_path)
    assert sweep.hours_left(store, config) == pytest.approx(0.5 * (training + scoring))
    assert sweep.hours_left(store, config, ("fgsm",)) == pytest.approx(0.5 * (training + scoring) + fgsm)


def test_hours_left_of_a_stored_run_are_the_evaluations_it_lacks(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36, vanilla=0.2))
    config = tiny_config(seed=0, epochs=1, train_subset=64, test_subset=32)
    plan = plans.Plan("t", "test", (config,), runtime={}, evaluations=("ece",))
    assert sweep.run_worker(plan, results_root=tmp_path) == 1
    per_image = plans.EVALUATION_VANILLA_STEPS_PER_IMAGE
    assert sweep.hours_left(ResultsStore(tmp_path), config, ("ece", "corruption")) == pytest.approx(
        32 * per_image["corruption"] * 0.2 / 3600)  # ece is stored; corruption reads all 32 (under 2,000)


def test_a_runs_cost_counts_its_scored_epochs_and_the_images_each_evaluation_reads(monkeypatch):
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(vanilla=0.5, mixup=0.5))
    config = RunConfig(method="mixup", dataset=plans.DATASET, epochs=120, train_subset=1000)
    training = 120 * 10 * 0.5 / 3600
    scored = 21  # the last 11 epochs, every 12th before them and the first (training.loop.scored_epoch)
    scoring = scored * 10000 * plans.SCORING_VANILLA_STEPS_PER_IMAGE * 0.5 / 3600
    per_image = plans.EVALUATION_VANILLA_STEPS_PER_IMAGE
    evaluations = (10000 * per_image["fgsm"] + 2000 * per_image["corruption"]) * 0.5 / 3600
    assert plans.overhead_hours(config, ("fgsm", "corruption")) == pytest.approx((scoring, evaluations))
    assert plans.run_cost_hours(config, ("fgsm", "corruption")) == pytest.approx(training + scoring + evaluations)
    assert plans.run_cost_hours(config) < plans.run_cost_hours(config, ("fgsm",))
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(mixup=0.5))  # no Vanilla row
    assert plans.run_cost_hours(config) is None


def test_hours_must_be_a_positive_number():
    assert sweep_args("study", "--hours", "2.5").hours == 2.5
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(SystemExit):
            sweep_args("study", "--hours", bad)


def test_a_run_being_trained_elsewhere_is_waited_for_not_trained_twice(tmp_path, cache, monkeypatch):
    import threading

    import mixrepro.runs
    from mixrepro.runs import run_lock, train_or_load

    install_doubles(monkeypatch)
    trained = []
    real_fit = mixrepro.runs.fit
    monkeypatch.setattr(mixrepro.runs, "fit", lambda config, **kw: trained.append(config) or real_fit(config, **kw))
    config, found = tiny_config(seed=0, epochs=1), []
    with run_lock(config):  # another page or worker holds the run
        waiter = threading.Thread(target=lambda: found.append(train_or_load(config, results_root=tmp_path,
                                                                            progress=False)))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not found  # waiting for the lock
        mixrepro.runs._train_or_load_locked(config, ResultsStore(tmp_path), True, (), None, False,
                                            {"progress": False})  # the holder trains it
    waiter.join(timeout=30)
    assert not waiter.is_alive() and len(trained) == 1  # the waiter loaded the holder's run
    assert found[0].config == config


def test_pages_record_the_runs_they_ask_for_and_the_pages_plan_keeps_those_outside_the_study(
        tmp_path, monkeypatch):
    from mixrepro import study
    from mixrepro.study.collect import WANTED_RUNS_ENV
    from mixrepro.study.parameters import arm_parameters

    wanted = tmp_path / "wanted.jsonl"
    monkeypatch.setenv(WANTED_RUNS_ENV, str(wanted))
    params = study.validate_parameters(budget="cpu", dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                       train=False, results_dir=str(tmp_path / "empty"))
    runs, reason = study.collect_runs(params)  # the study's own Mixup runs: three seeds
    arm = arm_parameters(params, "mixup", method_params={"alpha": 2.0})
    study.collect_runs(arm, methods=["mixup"], method_params={"alpha": 2.0})  # an ablation arm: one seed
    assert runs == {} and "not run" in reason
    lines = wanted.read_text().splitlines()
    assert len(lines) == 4
    content = plans.pages_plan_content(lines + lines[-1:])  # a run two pages ask for is planned once
    configs = [RunConfig.from_dict(c) for c in content["configs"]]
    assert [(c.method, c.method_params, c.seed) for c in configs] == [("mixup", {"alpha": 2.0}, 0)]
    assert not plans.in_study_plan(configs[0]) and configs[0].key() == arm.config("mixup", 0,
                                                                                  method_params={"alpha": 2.0}).key()
    assert content["run_evaluations"] == {configs[0].key(): list(study.collect.SHARED_EVALUATIONS)}


def test_a_pages_run_is_evaluated_for_what_the_pages_asking_for_it_use(monkeypatch):
    """Two pages ask for one run (ece + fgsm; occlusion + ece): it gets the union in the study's order; a
    run only one page asks for gets that page's; the plan file carries them and the sweep reads them."""
    monkeypatch.setattr(plans, "run_cost_hours", lambda config, evaluations=(): 1.0)
    shared, own = (RunConfig(method="mixup", dataset=plans.DATASET, method_params={"alpha": a}) for a in (0.3, 0.7))

    def line(page, config, evaluations):
        return json.dumps({"config": config.to_dict(), "evaluations": evaluations, "page": page})

    content = plans.pages_plan_content([line("a", shared, ["ece", "fgsm"]), line("b", shared, ["occlusion", "ece"]),
                                        line("b", own, ["ece"])])
    assert content["run_evaluations"] == {shared.key(): ["ece", "fgsm", "occlusion"], own.key(): ["ece"]}
    plan = plans.Plan("pages", "test", (shared, own), runtime={}, evaluations=plans.STUDY_EVALUATIONS,
                      run_evaluations={k: tuple(v) for k, v in content["run_evaluations"].items()})
    assert plan.evaluations_for(own) == ("ece",)
    assert plan.evaluations_for(RunConfig(method="vanilla", dataset=plans.DATASET)) == plans.STUDY_EVALUATIONS
    assert plan.all_evaluations() == plans.STUDY_EVALUATIONS


def test_a_pages_run_with_its_own_evaluations_counts_as_done(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    config = tiny_config(seed=0, epochs=1)
    plan = plans.Plan("t", "test", (config,), runtime={}, evaluations=("ece", "fgsm"),
                      run_evaluations={config.key(): ("ece",)})
    store = ResultsStore(tmp_path)
    assert sweep.evaluations_to_run(plan, store, config) == ("ece",)
    sweep.run_worker(plan, results_root=tmp_path)
    record = store.load(config)
    assert set(record.evaluations["online"]) == {"ece"}  # fgsm: no page reads it for this run
    assert sweep.run_state(plan, store, config) == "done"


def test_a_pages_plan_file_without_per_run_evaluations_is_refused_with_the_command_that_rewrites_it(tmp_path):
    path = tmp_path / "pages-cpu.json"
    path.write_text(json.dumps({"configs": [], "evaluations": ["ece"]}))
    with pytest.raises(MixreproError, match="--plan-pages"):
        plans.pages_plan(path)


def test_the_pages_plan_puts_the_page_that_finishes_soonest_first(monkeypatch):
    """Page b's two 1-hour runs (2 h) come before page a's 3-hour run, though page c's 0.5-hour run is
    the cheapest of all it comes last: c also needs a 4-hour run. A run two pages share goes with the first."""
    hours = {"r1": 3.0, "r2": 1.0, "r3": 1.0, "r4": 0.5, "r5": 4.0}
    configs = {name: RunConfig(method="mixup", dataset=plans.DATASET, method_params={"alpha": 0.1 * (i + 1)})
               for i, name in enumerate(hours)}
    by_key = {c.key(): hours[name] for name, c in configs.items()}
    monkeypatch.setattr(plans, "run_cost_hours", lambda c, evaluations=(): by_key[c.key()])

    def line(page, name):
        return json.dumps({"config": configs[name].to_dict(), "evaluations": ["ece"], "page": page})

    asked = [("a", "r1"), ("b", "r2"), ("b", "r3"), ("c", "r4"), ("c", "r5"), ("c", "r2")]
    content = plans.pages_plan_content([line(page, name) for page, name in asked])
    order = [next(n for n, c in configs.items() if c.key() == RunConfig.from_dict(d).key()) for d in content["configs"]]
    assert order == ["r2", "r3", "r1", "r4", "r5"]
    assert [(p["page"], p["runs"], p["new_runs"], p["hours_of_one_core"]) for p in content["pages"]] == [
        ("b", 2, 2, 2.0), ("a", 1, 1, 3.0), ("c", 3, 2, 5.5)]


def test_the_committed_pages_plan_is_outside_the_study_plan_and_ordered_by_page():
    plan = plans.get_plan("pages")
    assert plan.configs and len({c.key() for c in plan.configs}) == len(plan.configs)
    assert not any(plans.in_study_plan(c) for c in plan.configs)
    assert all(c.dataset == plans.DATASET and c.epochs == 120 for c in plan.configs)
    pages = json.loads(plans.PAGES_PLAN_FILE.read_text())["pages"]
    totals = [p["hours_of_one_core"] for p in pages]
    priced = [t for t in totals if t is not None]
    assert priced == sorted(priced) and None not in totals[:len(priced)]
    assert sum(p["new_runs"] for p in pages) == len(plan.configs)
    assert all(p["page"] for p in pages)  # every line named the page that asked (the runner sets it)


def test_a_worker_given_several_plans_goes_on_to_the_next_when_one_is_done(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    first, second = (tiny_config(seed=0, epochs=1),), (tiny_config(seed=1, epochs=1),)
    named = {"a": plans.Plan("a", "test", first, runtime={}), "b": plans.Plan("b", "test", second, runtime={})}
    monkeypatch.setattr(sweep, "get_plan", lambda name: named[name] if name in named else plans.get_plan(name))
    assert sweep.cli_sweep(sweep_args("a", "b", "--out", str(tmp_path))) == 0
    store = ResultsStore(tmp_path)
    assert store.load(first[0]) is not None and store.load(second[0]) is not None
    with pytest.raises(UnknownNameError):  # a misspelt plan fails before any work
        sweep.cli_sweep(sweep_args("a", "studdy", "--out", str(tmp_path / "other")))
    assert not (tmp_path / "other").exists()


def test_overtime_trains_the_runs_that_miss_the_deadline_after_those_that_meet_it(tmp_path, cache, monkeypatch, capsys):
    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36, vanilla=0.2))
    long_run = tiny_config(seed=0, epochs=1, train_subset=160, test_subset=16)  # 10 steps: about 5 s with the margin
    short_run = tiny_config(seed=1, epochs=1, train_subset=16, test_subset=16)  # 1 step: about 0.5 s
    monkeypatch.setattr(sweep, "get_plan", lambda name: plans.Plan(name, "test", (long_run, short_run), runtime={}))
    hours = str(3 / 3600)

    assert sweep.cli_sweep(sweep_args("t", "--out", str(tmp_path), "--hours", hours)) == 0
    store = ResultsStore(tmp_path)
    assert store.load(short_run) is not None and store.load(long_run) is None  # without overtime: left for later
    store_dir = tmp_path / "overtime"
    assert sweep.cli_sweep(sweep_args("t", "--out", str(store_dir), "--hours", hours, "--overtime")) == 0
    finished = [line for line in capsys.readouterr().out.splitlines() if "finished" in line]
    assert [short_run.key() in line for line in finished[-2:]] == [True, False]  # the run that fits first
    assert ResultsStore(store_dir).load(long_run) is not None
    with pytest.raises(InvalidParameterError, match="--hours"):  # overtime of what deadline?
        sweep.cli_sweep(sweep_args("t", "--out", str(store_dir), "--overtime"))


def test_overtime_finishes_a_plan_before_the_next_plans_runs_that_fit(tmp_path, cache, monkeypatch, capsys):
    """Plan a's long run misses the deadline, plan b's short run meets it: without overtime only b's runs;
    with it, a's long run first (a later plan's short runs must not starve an earlier plan's long ones)."""
    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36, vanilla=0.2))
    long_run = tiny_config(seed=0, epochs=1, train_subset=160, test_subset=16)  # about 5 s with the margin
    short_run = tiny_config(seed=1, epochs=1, train_subset=16, test_subset=16)  # about 0.5 s
    named = {"a": plans.Plan("a", "test", (long_run,), runtime={}), "b": plans.Plan("b", "test", (short_run,),
                                                                                    runtime={})}
    monkeypatch.setattr(sweep, "get_plan", lambda name: named[name])
    hours = str(3 / 3600)
    assert sweep.cli_sweep(sweep_args("a", "b", "--out", str(tmp_path / "fits"), "--hours", hours)) == 0
    store = ResultsStore(tmp_path / "fits")
    assert store.load(short_run) is not None and store.load(long_run) is None
    capsys.readouterr()
    assert sweep.cli_sweep(sweep_args("a", "b", "--out", str(tmp_path / "over"), "--hours", hours, "--overtime")) == 0
    finished = [line for line in capsys.readouterr().out.splitlines() if "finished" in line]
    assert [long_run.key() in line for line in finished] == [True, False]
    assert sweep.work_passes(["a", "b"], 1.0, False) == [("a", 1.0), ("b", 1.0)]
    assert sweep.work_passes(["a", "b"], 1.0, True) == [("a", 1.0), ("a", None), ("b", 1.0), ("b", None)]


def test_workers_start_that_many_one_thread_processes_of_the_same_sweep(tmp_path, cache, monkeypatch):
    started = []

    class FakeProcess:
        def __init__(self, argv, env):
            started.append((argv, env))
            self.code = 3 if len(started) == 2 else 0  # the second worker fails

        def wait(self):
            return self.code

    monkeypatch.setattr("subprocess.Popen", FakeProcess)
    args = sweep_args("study", "pages", "--workers", "2", "--hours", "2.5", "--overtime", "--out", str(tmp_path))
    assert sweep.cli_sweep(args) == 3  # a failed worker fails the sweep
    assert len(started) == 2 and started[0] == started[1]
    argv, env = started[0]
    assert argv[1:] == ["-m", "mixrepro.cli", "sweep", "study", "pages", "--margin", "1.25", "--out", str(tmp_path),
                        "--hours", "2.5", "--overtime"]
    assert sweep_args(*argv[4:]).workers == 1 and env["OMP_NUM_THREADS"] == "1"  # each child is one worker
    started.clear()
    assert sweep.cli_sweep(sweep_args("study", "--workers", "1", "--out", str(tmp_path), "--hours", "0.0001")) == 0
    assert started == []  # one worker: this process


def test_workers_must_be_a_whole_positive_number_and_not_given_to_list_or_park():
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(SystemExit):
            sweep_args("study", "--workers", bad)
    with pytest.raises(InvalidParameterError, match="--workers"):
        sweep.cli_sweep(sweep_args("study", "--list", "--workers", "2"))
