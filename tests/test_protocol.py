"""The reduced-budget protocol: step-scaled EMA, pinned and recorded runtime, sparse test scoring,
stale runs, keys of stored runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mixrepro.config import RunConfig, config_for_budget
from mixrepro.errors import InvalidParameterError, StaleRunError
from mixrepro.methods.base import (PAPER_TOTAL_STEPS, automix_momentum, ema_horizon, ema_initial_weight,
                                   step_scaled_momentum)
from mixrepro.results import ResultsStore
from mixrepro.runs import is_stale, train_or_load
from mixrepro.training import TrainingInterrupted, fit
from mixrepro.training.checkpoint import ResumeMismatchError
from mixrepro.training.loop import CURVE_POINTS, SCORED_WINDOW, scored_epoch
from doubles import install_doubles, tiny_config

STORE = Path(__file__).resolve().parent.parent / "notebooks" / "results"


# ---------------------------------------------------------------- step-scaled EMA


@pytest.mark.parametrize("total_steps", [3_000, 20_000, 120_000])
def test_step_scaled_ema_keeps_the_horizon_the_papers_fraction_of_training(total_steps):
    for progress in (0.0, 0.05, 0.5, 0.9, 0.999):
        paper_fraction = ema_horizon(automix_momentum(progress)) / PAPER_TOTAL_STEPS
        ours = step_scaled_momentum(progress, total_steps)
        assert ema_horizon(ours) / total_steps == pytest.approx(paper_fraction, rel=1e-9)


def test_step_scaled_ema_forgets_the_random_init_as_the_paper_does():
    paper_share = ema_initial_weight(40_000, lambda p: automix_momentum(p))  # a tenth of the paper's run
    scaled_share = ema_initial_weight(3_000, lambda p: step_scaled_momentum(p, 3_000))
    paper_schedule_share = ema_initial_weight(3_000)
    assert paper_schedule_share > 0.15  # the paper's schedule on a short run: still a fifth random
    assert scaled_share < 1e-6 and paper_share < 1e-6


def test_step_scaled_ema_is_clamped_for_tiny_runs():
    assert step_scaled_momentum(0.0, 20) == 0.0  # EMA = online network
    assert 0.0 <= step_scaled_momentum(0.99, 20) < 1.0


def test_ema_schedule_is_validated_and_key_neutral_at_its_old_default():
    with pytest.raises(InvalidParameterError, match="paper or step-scaled"):
        RunConfig(ema_schedule="linear")
    paper, scaled = RunConfig(), RunConfig(ema_schedule="step-scaled")
    assert paper.key() != scaled.key()
    blob = {k: v for k, v in paper.to_dict().items() if k != "ema_schedule"}
    assert RunConfig.from_dict(blob) == paper and RunConfig.from_dict(blob).key() == paper.key()


def test_every_stored_run_sits_under_its_configs_key():
    folders = [p.parent for p in STORE.glob("*/*/*/config.json") if not p.parent.name.startswith(".")]
    assert folders, "the committed store holds runs"
    for folder in folders:
        config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
        assert folder.name == config.key(), folder


def test_the_methods_ema_follows_the_configured_schedule(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    paper = fit(tiny_config(), results_root=tmp_path / "a", progress=False)
    scaled = fit(tiny_config(ema_schedule="step-scaled"), results_root=tmp_path / "b", progress=False)
    # 8 steps: the scaled momentum is 0, so the EMA network is the online one
    assert scaled.epochs[-1]["ema_top1"] == scaled.epochs[-1]["online_top1"]
    assert paper.epochs[-1]["online_top1"] == scaled.epochs[-1]["online_top1"]  # training unchanged


# ---------------------------------------------------------------- runtime pinned, recorded, checked


def test_threads_are_pinned_for_the_run_recorded_and_restored(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    record = fit(tiny_config(), results_root=tmp_path, progress=False, threads=1)
    assert torch.get_num_threads() == before
    assert record.environment["runtime"]["threads"] == 1 and record.environment["torch_threads"] == 1
    assert record.environment["runtime"]["precision"] == "fp32"
    with pytest.raises(InvalidParameterError, match="threads"):
        fit(tiny_config(seed=1), results_root=tmp_path, progress=False, threads=0)


@pytest.mark.parametrize("change", [{"threads": 2}, {"amp": True}, {"channels_last": True}])
def test_a_resume_under_another_runtime_is_refused(tmp_path, monkeypatch, change):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(), results_root=tmp_path, progress=False, threads=1, stop_after_step=5)
    with pytest.raises(ResumeMismatchError, match="resume with|Resume with"):
        fit(tiny_config(), results_root=tmp_path, progress=False, **{"threads": 1, **change})


def test_a_resume_without_runtime_follows_the_checkpoint(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "whole"))
    whole = fit(tiny_config(), results_root=tmp_path / "whole", progress=False, threads=1)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "killed"))
    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(), results_root=tmp_path / "killed", progress=False, threads=1, stop_after_step=5)
    resumed = fit(tiny_config(), results_root=tmp_path / "killed", progress=False)  # no threads given
    assert resumed.environment["runtime"]["threads"] == 1
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert strip(resumed.epochs) == strip(whole.epochs)


# ---------------------------------------------------------------- sparse scoring


@pytest.mark.parametrize("epochs", [2, 24, 30, 120, 800])
def test_scored_epochs_cover_the_reported_window_and_a_curve(epochs):
    scored = [e for e in range(1, epochs + 1) if scored_epoch(e, epochs)]
    assert scored[-min(epochs, SCORED_WINDOW):] == list(range(max(1, epochs - SCORED_WINDOW + 1), epochs + 1))
    assert 1 in scored and len(scored) <= SCORED_WINDOW + CURVE_POINTS + 1
    assert len(scored) >= min(epochs, SCORED_WINDOW + math.floor(0.5 * CURVE_POINTS))


# ---------------------------------------------------------------- stale runs


def test_a_run_of_older_method_code_is_stale_and_never_reused(tmp_path, monkeypatch):
    from mixrepro.methods import METHODS

    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    config = config_for_budget("smoke", method="mixup", dataset="synthetic", epochs=1, train_subset=200,
                               test_subset=100)
    record = fit(config, results_root=tmp_path, progress=False, threads=1)
    assert not is_stale(record)
    monkeypatch.setattr(METHODS.get("mixup"), "code_version", record.method_code_version + 1)
    stored = ResultsStore(tmp_path).load(config)
    assert is_stale(stored)
    with pytest.raises(StaleRunError, match="version 1 of the method's code; this is version 2"):
        train_or_load(config, results_root=tmp_path, train=False)
    again = train_or_load(config, results_root=tmp_path, progress=False)  # retrained, not reused
    assert again.method_code_version == record.method_code_version + 1
