"""Parked checkpoints: a half-trained run carried to a new machine through the results tree resumes exactly."""
from __future__ import annotations

import json

import pytest

from doubles import install_doubles, sweep_args, tiny_config
from mixrepro import parking, plans, sweep
from mixrepro.errors import ChecksumError, MixreproError
from mixrepro.results import ResultsStore
from mixrepro.training import fit
from mixrepro.training.checkpoint import checkpoint_path
from mixrepro.training.loop import TrainingInterrupted
from test_train import assert_same_tensors, final_state, numbers

CONFIG = tiny_config(seed=0, epochs=2, train_subset=64)  # 4 steps of 16 images per epoch


def machine(monkeypatch, folder):
    """Switch to a machine whose checkpoint cache is ``folder`` (empty: a new machine)."""
    monkeypatch.setenv("MIXREPRO_CACHE", str(folder))


def killed_in_second_epoch(results_root):
    with pytest.raises(TrainingInterrupted):
        fit(CONFIG, results_root=results_root, progress=False, stop_after_step=5)


def test_a_parked_run_resumes_on_a_new_machine_as_if_never_interrupted(tmp_path, monkeypatch, capsys):
    install_doubles(monkeypatch)
    plan = plans.Plan("t", "test", (CONFIG,), runtime={})
    machine(monkeypatch, tmp_path / "whole")
    assert sweep.run_worker(plan, results_root=tmp_path / "whole") == 1
    uninterrupted = numbers(ResultsStore(tmp_path / "whole").load(CONFIG))
    whole_state = final_state(CONFIG)

    results = tmp_path / "results"
    machine(monkeypatch, tmp_path / "first")
    killed_in_second_epoch(results)
    monkeypatch.setattr(sweep, "get_plan", lambda name: plan)
    assert sweep.cli_sweep(sweep_args("t", "--park", "--out", str(results))) == 0
    assert "parked 1 checkpoint(s)" in capsys.readouterr().out
    manifest = parking.read_manifest(results, CONFIG)
    assert manifest["epoch"] == 1 and manifest["sha256"]

    machine(monkeypatch, tmp_path / "second")  # a new machine: nothing in its cache
    store = ResultsStore(results)
    assert sweep.half_trained(store, CONFIG) and parking.epochs_done(results, CONFIG) == 1
    assert sweep.run_worker(plan, results_root=results) == 1
    assert "resuming" in capsys.readouterr().out
    resumed = store.load(CONFIG)
    assert numbers(resumed) == uninterrupted and resumed.environment["resumed_at_epochs"] == [1]
    assert_same_tensors(final_state(CONFIG)["method"], whole_state["method"])
    assert not (results / parking.PARKED_DIR / f"{CONFIG.key()}.pt").exists()  # done: parked files removed
    assert parking.read_manifest(results, CONFIG) is None


def test_parking_keeps_the_furthest_checkpoint_and_the_cache_wins_when_further(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    machine(monkeypatch, tmp_path / "cache")
    killed_in_second_epoch(tmp_path)
    assert parking.park(tmp_path, CONFIG) is True
    assert parking.park(tmp_path, CONFIG) is False  # the parked copy is as far along already
    assert parking.unpark(tmp_path, CONFIG) is False  # the cache's own checkpoint is as far along
    machine(monkeypatch, tmp_path / "empty")
    assert parking.park(tmp_path, CONFIG) is False  # nothing in this cache to park
    assert parking.unpark(tmp_path, CONFIG) is True and checkpoint_path(CONFIG).is_file()


def test_a_corrupt_parked_checkpoint_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    install_doubles(monkeypatch)
    machine(monkeypatch, tmp_path / "first")
    killed_in_second_epoch(tmp_path)
    parking.park(tmp_path, CONFIG)
    parked, _ = parking.parked_paths(tmp_path, CONFIG)
    data = bytearray(parked.read_bytes())
    data[-100] ^= 1
    parked.write_bytes(bytes(data))
    machine(monkeypatch, tmp_path / "second")
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        parking.unpark(tmp_path, CONFIG)
    assert not checkpoint_path(CONFIG).exists()
    plan = plans.Plan("t", "test", (CONFIG,), runtime={})
    assert sweep.run_worker(plan, results_root=tmp_path) == 0  # reported, not trained from a bad file
    assert "sha256 mismatch" in capsys.readouterr().err


def test_a_manifest_of_another_run_is_refused(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    machine(monkeypatch, tmp_path / "cache")
    killed_in_second_epoch(tmp_path)
    parking.park(tmp_path, CONFIG)
    _, manifest_path = parking.parked_paths(tmp_path, CONFIG)
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["seed"] = 7
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(MixreproError, match="does not describe run"):
        parking.read_manifest(tmp_path, CONFIG)


def test_hours_left_and_the_list_count_a_parked_checkpoint(tmp_path, monkeypatch, capsys):
    from test_sweep import fake_bench

    install_doubles(monkeypatch)
    monkeypatch.setattr(plans, "load_bench_report", lambda: fake_bench(tiny=0.36))
    monkeypatch.setattr(plans, "overhead_hours", lambda config, evaluations=(): (0.0, 0.0))  # training alone
    machine(monkeypatch, tmp_path / "first")
    killed_in_second_epoch(tmp_path)
    parking.park(tmp_path, CONFIG)
    machine(monkeypatch, tmp_path / "second")
    full = 2 * 4 * 0.36 / 3600
    assert sweep.hours_left(ResultsStore(tmp_path), CONFIG) == pytest.approx(full * 0.5)
    monkeypatch.setattr(sweep, "get_plan", lambda name: plans.Plan(name, "test", (CONFIG,), runtime={}))
    sweep.cli_sweep(sweep_args("t", "--list", "--out", str(tmp_path)))
    assert capsys.readouterr().out.split()[0] == "resume"


def test_a_stored_runs_checkpoint_is_parked_only_when_it_holds_the_final_weights(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    machine(monkeypatch, tmp_path / "cache")
    plan = plans.Plan("t", "test", (CONFIG,), runtime={})
    assert sweep.run_worker(plan, results_root=tmp_path) == 1  # stored; the cache holds its final weights
    assert parking.park(tmp_path, CONFIG) is True  # e.g. evaluations still to do: worth carrying
    parking.remove_parked(tmp_path, CONFIG)
    machine(monkeypatch, tmp_path / "restoring")  # a new machine retraining the stored run's weights
    with pytest.raises(TrainingInterrupted):
        fit(CONFIG, results_root=tmp_path / "scratch", progress=False, stop_after_step=5)
    assert parking.park(tmp_path, CONFIG) is False  # that retrain starts over anyway (mixrepro.verify)


def test_parked_checkpoints_of_the_committed_results_are_git_ignored():
    """Checkpoints never land in the repository: the parked folder is carried by hand, not committed."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    folder = Path("notebooks/results") / parking.PARKED_DIR
    for name in (f"{CONFIG.key()}.pt", f"{CONFIG.key()}.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", str(folder / name)], cwd=repo)
        assert ignored.returncode == 0, f"{folder / name} is not git-ignored: a checkpoint could be committed"


def test_a_run_parked_on_another_cpu_kernel_set_resumes_with_a_warning(tmp_path, monkeypatch, capsys):
    install_doubles(monkeypatch)
    machine(monkeypatch, tmp_path / "first")
    killed_in_second_epoch(tmp_path)
    parking.park(tmp_path, CONFIG)
    assert parking.read_manifest(tmp_path, CONFIG)["cpu_capability"] == parking.cpu_capability()
    machine(monkeypatch, tmp_path / "same-kind")
    assert parking.unpark(tmp_path, CONFIG) is True
    assert "bit-identical" not in capsys.readouterr().err  # same kernels: nothing to say
    machine(monkeypatch, tmp_path / "other-kind")
    monkeypatch.setattr(parking, "cpu_capability", lambda: "SOME_OTHER_ISA")
    assert parking.unpark(tmp_path, CONFIG) is True
    err = capsys.readouterr().err
    assert "SOME_OTHER_ISA" in err and "need not end bit-identical" in err
