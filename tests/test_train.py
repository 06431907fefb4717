"""The training loop: schedule, determinism, checkpoints and bit-exact resume, train-or-load."""
import json
import math
import random

import pytest
import torch

from mixrepro.config import RunConfig
from mixrepro.errors import MissingRunError, MissingWeightsError
from mixrepro.results import TIMING_COLUMNS, ResultsStore
from mixrepro.runs import train_or_load
from mixrepro.training import TrainingInterrupted, fit
from mixrepro.training import checkpoint as ckpt
from mixrepro.training.schedule import build_optimizer, cosine_lr
from doubles import install_doubles, tiny_config


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def numbers(record):
    """Every per-epoch value except wall-clock times."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in record.epochs]


def final_state(config):
    return ckpt.load_checkpoint(ckpt.checkpoint_path(config), config)


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cosine_lr_matches_torch_scheduler_stepped_per_epoch():
    epochs, base, floor = 7, 0.1, 0.05
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=floor)
    for epoch in range(epochs):
        assert cosine_lr(epoch, epochs, base, floor) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        sched.step()
    assert cosine_lr(0, epochs, base, floor) == base
    assert cosine_lr(epochs, epochs, base, floor) == pytest.approx(floor)


def test_optimizer_trains_everything_but_the_ema_copy():
    from doubles import TinyMixup, TinyNet

    method = TinyMixup(TinyNet(), 6)
    method.mix_block = torch.nn.Conv2d(2, 1, 1)  # stands in for a learned method's extra module
    opt = build_optimizer(tiny_config(), method.parameters())
    params = {id(p) for group in opt.param_groups for p in group["params"]}
    assert params == {id(p) for p in [*method.model.parameters(), *method.mix_block.parameters()]}
    group = opt.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["nesterov"]) == (0.9, 1e-4, False)


def test_fit_records_every_epoch_and_publishes_the_run(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    config = tiny_config(epochs=3)
    record = fit(config, results_root=tmp_path / "results", progress=False)
    assert [row["epoch"] for row in record.epochs] == [1, 2, 3]
    lrs = [row["lr"] for row in record.epochs]
    assert lrs == [cosine_lr(e, 3, 0.1, 0.01) for e in range(3)]  # the method's floor, 0.01
    row = record.epochs[-1]
    for key in ("train_loss", "lam", "online_top1", "online_top5", "ema_top1", "ema_top5", "train_images_per_s"):
        assert math.isfinite(row[key]), key
    assert row["train_images"] == 64 and 0 <= row["ema_top1"] <= 100
    stored = ResultsStore(tmp_path / "results").load(config)
    assert stored.epochs == record.epochs and stored.summary == record.summary
    assert stored.summary["online"]["final"] == row["online_top1"]
    assert final_state(config)["state"]["epoch"] == 3


def test_min_lr_from_config_overrides_the_method_floor(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    record = fit(tiny_config(epochs=2, min_lr=0.0), results_root=tmp_path, progress=False)
    assert record.epochs[1]["lr"] == pytest.approx(0.05)


def test_two_runs_with_one_seed_are_bitwise_identical(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    config = tiny_config()
    runs = []
    for name in ("a", "b"):
        monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / name))
        runs.append((fit(config, results_root=tmp_path / name, progress=False), final_state(config)))
    (ra, sa), (rb, sb) = runs
    assert numbers(ra) == numbers(rb)
    assert_same_tensors(sa["method"], sb["method"])
    other = fit(config.replace(seed=1), results_root=tmp_path / "a", progress=False)
    assert numbers(other) != numbers(ra)


@pytest.mark.parametrize("kill_at", sorted(random.Random(0).sample(range(1, 12), 3)))
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, monkeypatch, kill_at):
    install_doubles(monkeypatch)
    config = tiny_config(epochs=3)  # 4 steps per epoch, 12 in all
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "whole"))
    whole = fit(config, results_root=tmp_path / "whole", progress=False)
    whole_state = final_state(config)

    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "killed"))
    with pytest.raises(TrainingInterrupted):
        fit(config, results_root=tmp_path / "killed", progress=False, stop_after_step=kill_at)
    assert ResultsStore(tmp_path / "killed").load(config) is None  # nothing published by a killed run
    with pytest.raises(TrainingInterrupted):  # killed again later in the resumed run
        fit(config, results_root=tmp_path / "killed", progress=False, stop_after_step=11)
    resumed = fit(config, results_root=tmp_path / "killed", progress=False)
    resumed_state = final_state(config)

    assert numbers(resumed) == numbers(whole)
    first_checkpoint = kill_at // 4  # epochs completed before the first kill
    assert resumed.environment["resumed_at_epochs"] == [first_checkpoint] * (first_checkpoint == 1) + [2]
    assert whole.environment["resumed_at_epochs"] == []
    assert_same_tensors(resumed_state["method"], whole_state["method"])
    for a, b in zip(resumed_state["optimizer"]["state"].values(), whole_state["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert torch.equal(resumed_state["generator"], whole_state["generator"])


def test_resume_false_starts_over(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    config = tiny_config()
    with pytest.raises(TrainingInterrupted):
        fit(config, results_root=tmp_path, progress=False, stop_after_step=5)
    assert final_state(config)["state"]["epoch"] == 1
    with pytest.raises(TrainingInterrupted):
        fit(config, results_root=tmp_path, progress=False, stop_after_step=2, resume=False)


def test_checkpoint_of_another_config_is_refused(tmp_path, cache, monkeypatch):
    install_doubles(monkeypatch)
    config = tiny_config(epochs=1)
    fit(config, results_root=tmp_path, progress=False)
    other = config.replace(lr=0.2)
    path = ckpt.checkpoint_path(other)
    path.parent.mkdir(parents=True)
    ckpt.checkpoint_path(config).rename(path)
    with pytest.raises(Exception, match="does not belong to this config"):
        ckpt.load_checkpoint(path, other)


def test_train_or_load_trains_once_then_loads(tmp_path, cache, monkeypatch):
    calls = install_doubles(monkeypatch)
    config = tiny_config(epochs=1)
    first = train_or_load(config, results_root=tmp_path, progress=False)
    second = train_or_load(config, results_root=tmp_path, progress=False)
    again = train_or_load(config, results_root=tmp_path, train=False)
    assert calls["load"] == 1  # data loaded (and the model trained) once
    assert second.epochs == first.epochs == again.epochs
    assert second.run_dir == first.run_dir


def test_missing_run_error_says_what_where_and_how(tmp_path):
    config = tiny_config(epochs=5, lr=0.2, method_params={"alpha": 0.5})
    with pytest.raises(MissingRunError) as info:
        train_or_load(config, results_root=tmp_path, train=False)
    text = str(info.value)
    assert config.key() in text and "tiny on fake" in text and "seed 0" in text
    assert str(ResultsStore(tmp_path).run_dir(config)) in text
    assert "mixrepro train --method tiny --dataset fake" in text
    assert "--set epochs=5" in text and "--set lr=0.2" in text and "--set method.alpha=0.5" in text
    assert f"--out {tmp_path}" in text


def test_evaluations_are_computed_once_for_both_networks(tmp_path, cache, monkeypatch):
    import mixrepro.evaluate

    install_doubles(monkeypatch)
    seen = []

    def fake_run_evaluations(model, test_x, test_y, names, device, generator, options=None):
        seen.append((type(model).__name__, tuple(names), len(test_x)))
        assert options == ({"fgsm": {"eps": 0.01}} if "fgsm" in names else None)
        return {name: {"value": float(torch.rand((), generator=generator))} for name in names}

    monkeypatch.setattr(mixrepro.evaluate, "run_evaluations", fake_run_evaluations, raising=False)
    config = tiny_config(epochs=1)
    record = train_or_load(config, results_root=tmp_path, evaluations=("ece",), progress=False)
    assert seen == [("TinyNet", ("ece",), 32)] * 2
    assert set(record.evaluations) == {"online", "ema"}
    assert record.evaluations["online"] == record.evaluations["ema"]  # same seeded draws per network
    train_or_load(config, results_root=tmp_path, evaluations=("ece",))
    assert len(seen) == 2  # stored: not recomputed
    again = train_or_load(config, results_root=tmp_path, train=False, evaluations=("ece", "fgsm"),
                          evaluation_options={"fgsm": {"eps": 0.01}})
    assert seen[2:] == [("TinyNet", ("fgsm",), 32)] * 2
    stored = json.loads((record.run_dir / "evaluations.json").read_text())
    assert set(stored["ema"]) == {"ece", "fgsm"} and stored == again.evaluations
    times = json.loads((record.run_dir / "evaluation_times.json").read_text())
    assert set(times) == {"ece", "fgsm"} and times == again.evaluation_times
    assert all(t["seconds"] >= 0 and t["device"] == "cpu" and t["threads"] >= 1 for t in times.values())
    assert ResultsStore(tmp_path).load(config).evaluation_times == times

    ckpt.checkpoint_path(config).unlink()
    with pytest.raises(MissingWeightsError, match="are not in .*last.pt.*mixrepro train --method tiny"):
        train_or_load(config, results_root=tmp_path, train=False, evaluations=("occlusion",))


def test_a_killed_evaluation_keeps_the_finished_ones_and_the_rest_come_out_the_same(tmp_path, cache, monkeypatch):
    import mixrepro.evaluate

    install_doubles(monkeypatch)
    calls, kill_at = [], {"name": None}

    def fake_run_evaluations(model, test_x, test_y, names, device, generator, options=None):
        if names == [kill_at["name"]]:
            raise KeyboardInterrupt  # the session ends while this evaluation runs
        calls.append(tuple(names))
        return {name: {"value": float(torch.rand((), generator=generator))} for name in names}

    monkeypatch.setattr(mixrepro.evaluate, "run_evaluations", fake_run_evaluations, raising=False)
    config, names = tiny_config(epochs=1), ("ece", "fgsm", "occlusion")
    whole = train_or_load(config, results_root=tmp_path / "whole", evaluations=names, progress=False).evaluations
    kill_at["name"] = "fgsm"
    with pytest.raises(KeyboardInterrupt):
        train_or_load(config, results_root=tmp_path / "killed", evaluations=names, progress=False)
    run_dir = ResultsStore(tmp_path / "killed").run_dir(config)
    kept = json.loads((run_dir / "evaluations.json").read_text())
    assert {net: set(results) for net, results in kept.items()} == {"online": {"ece"}, "ema": {"ece"}}
    kill_at["name"], calls[:] = None, []
    resumed = train_or_load(config, results_root=tmp_path / "killed", evaluations=names).evaluations
    assert calls == [("fgsm",), ("fgsm",), ("occlusion",), ("occlusion",)]  # ece is not computed again
    assert resumed == whole  # each evaluation starts from the same seeded state


def real_method_names():
    import mixrepro.methods  # noqa: F401  (registers the methods)
    from mixrepro.methods.registry import METHODS

    return [name for name in ("mixup", "automix", "samix", "adautomix") if name in METHODS]


@pytest.fixture
def tiny_registered(monkeypatch):
    """The real registry plus the tiny double, so real data and models can be combined with it."""
    import mixrepro.methods  # noqa: F401
    import mixrepro.methods.registry as method_registry
    from mixrepro.registry import Registry
    from doubles import TinyMixup

    registry = Registry("method")
    for name, cls in method_registry.METHODS.items():
        registry.add(name, cls)
    registry.add("tiny", TinyMixup)
    monkeypatch.setattr(method_registry, "METHODS", registry)


@pytest.fixture(scope="module")
def synthetic():
    from mixrepro.data import load_dataset

    return load_dataset("synthetic")  # generated in memory: seconds, so once per module


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tiny", *real_method_names()])
def test_real_data_and_model_rerun_and_resume_bit_exactly(tmp_path, monkeypatch, tiny_registered, synthetic, method):
    """Synthetic data (seeded subsets), TensorBatcher, CIFAR ResNet-18 at width 1/8: same bits on rerun/resume."""
    import mixrepro.data

    monkeypatch.setattr(mixrepro.data, "load_dataset", lambda name, root=None: synthetic)
    config = RunConfig(method=method, dataset="synthetic", model="resnet18", width=0.125, epochs=2, batch_size=16,
                       train_subset=48, test_subset=40, seed=1)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "whole"))
    whole = fit(config, results_root=tmp_path / "whole", progress=False)
    whole_state = final_state(config)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "killed"))
    with pytest.raises(TrainingInterrupted):
        fit(config, results_root=tmp_path / "killed", progress=False, stop_after_step=4)
    resumed = fit(config, results_root=tmp_path / "killed", progress=False)
    assert numbers(resumed) == numbers(whole)
    assert_same_tensors(final_state(config)["method"], whole_state["method"])
    assert whole.epochs[0]["train_images"] == 48 and whole.summary["dataset_label"].startswith("synthetic")
    assert whole.environment["device_type"] == "cpu"
