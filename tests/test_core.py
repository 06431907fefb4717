"""Core pieces: registry, errors, config hashing, atomic writes, shared random draws."""
import json
import math
import os

import pytest
import torch
from scipy import stats

from mixrepro.config import BUDGETS, RunConfig, budget_deviations, config_for_budget
from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.io import atomic_write_json
from mixrepro.methods.base import automix_momentum
from mixrepro.mixers.base import MixTarget, sample_beta, sample_perm
from mixrepro.registry import Registry


def test_registry_unknown_name_lists_known_names():
    reg = Registry("widget")
    reg.add("b", 2)
    reg.add("a", 1)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"]
    with pytest.raises(UnknownNameError, match=r"unknown widget 'c'; known widgets: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="twice"):
        reg.add("a", 3)


def test_config_key_is_stable_and_sensitive():
    a = RunConfig(method="mixup", seed=1)
    assert a.key() == RunConfig(method="mixup", seed=1).key()
    assert a.key() != a.replace(seed=2).key()
    assert a.key() != a.replace(method_params={"alpha": 0.5}).key()
    assert RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a


@pytest.mark.parametrize("field,value", [("epochs", 0), ("lr", -1.0), ("train_subset", 0), ("seed", -1)])
def test_config_rejects_invalid_values(field, value):
    with pytest.raises(InvalidParameterError, match=field):
        RunConfig(**{field: value})


def test_config_rejects_unknown_keys():
    with pytest.raises(InvalidParameterError, match="config key"):
        RunConfig.from_dict({"methd": "mixup"})


def test_budgets_change_only_size_and_report_deviations():
    cfg = config_for_budget("smoke", method="mixup", dataset="synthetic")
    deviations = budget_deviations(cfg)
    assert set(deviations) == set(BUDGETS.get("smoke").overrides)
    assert deviations["epochs"] == (2, 800)
    assert cfg.lr == 0.1 and cfg.batch_size == 100 and cfg.weight_decay == 1e-4
    with pytest.raises(UnknownNameError, match="known budgets: cpu, cpu-short, gpu, paper, smoke"):
        config_for_budget("huge")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path, umask):
    old = os.umask(umask)
    try:
        plain, atomic = tmp_path / "plain.json", tmp_path / "atomic.json"
        plain.write_text("{}")
        atomic_write_json(atomic, {})
    finally:
        os.umask(old)
    # 0o644 under umask 022 (results others on the machine can read), not mkstemp's private 0o600
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_sample_beta_matches_beta_distribution_and_seed():
    g = torch.Generator().manual_seed(0)
    draws = sample_beta(0.5, g, size=4000).numpy()
    assert stats.kstest(draws, stats.beta(0.5, 0.5).cdf).pvalue > 1e-3
    a = sample_beta(2.0, torch.Generator().manual_seed(3))
    b = sample_beta(2.0, torch.Generator().manual_seed(3))
    assert a == b and 0 < a < 1
    with pytest.raises(InvalidParameterError, match="alpha"):
        sample_beta(0.0)


def test_sample_perm_is_a_seeded_permutation():
    p = sample_perm(10, torch.Generator().manual_seed(1))
    assert sorted(p.tolist()) == list(range(10))
    assert torch.equal(p, sample_perm(10, torch.Generator().manual_seed(1)))


def test_mix_target_soft_labels_add_equal_classes():
    y = torch.tensor([0, 1, 1])
    perm = torch.tensor([1, 2, 0])  # partners: 1, 1, 0
    soft = MixTarget.pair(y, perm, 0.7).soft(3)
    expected = torch.tensor([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.3, 0.7, 0.0]])
    assert torch.allclose(soft, expected)
    assert torch.allclose(MixTarget.clean(y).soft(3).sum(1), torch.ones(3))


def test_automix_momentum_schedule():
    assert automix_momentum(0.0) == 0.999
    assert automix_momentum(0.1) == 0.999
    assert math.isclose(automix_momentum(1.0), 0.999999)
    assert math.isclose(automix_momentum(0.55), (0.999 + 0.999999) / 2)
    values = [automix_momentum(p / 100) for p in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_torchvision_imports_through_the_shim():
    from mixrepro._torchvision import import_torchvision

    tv = import_torchvision()
    from torchvision.transforms import v2

    assert tv.__version__ and hasattr(v2, "MixUp")


def test_ema_horizon_and_initial_weight():
    from mixrepro.methods.base import ema_horizon, ema_initial_weight

    assert math.isclose(ema_horizon(0.999), 1000.0)
    assert math.isclose(ema_initial_weight(50, schedule=lambda p: 0.9), 0.9**50)
    # AutoMix schedule over 1000 steps: steps 0..100 (progress <= 0.1) at 0.999, the rest between 0.999 and 1
    assert 0.999**1000 < ema_initial_weight(1000) < 0.999**101
