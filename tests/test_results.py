"""The results store: layout, exact round trips, atomic publication, queries, environment."""
import json
import os

import pytest

import mixrepro.results as results
from mixrepro.config import RunConfig
from mixrepro.environment import collect_environment
from mixrepro.errors import InvalidParameterError, MixreproError
from mixrepro.results import ResultsStore, RunRecord, epochs_from_csv, epochs_to_csv
from mixrepro.training.summary import build_summary


def make_record(config: RunConfig, top1=(10.0, 30.0, 20.0)) -> RunRecord:
    epochs = [
        {"epoch": i + 1, "lr": 0.1 / (i + 1), "train_loss": 2.0 / 3 ** i, "online_top1": v, "online_top5": v + 1,
         "ema_top1": v + 0.5, "ema_top5": v + 2, "train_images": 100, "train_time_s": 0.5}
        for i, v in enumerate(top1)
    ]
    summary = build_summary(epochs, train_time_s=1.5, wall_time_s=2.0, dataset_label="test data")
    return RunRecord(config, epochs, summary, {"torch": "x"})


def test_epochs_csv_round_trips_floats_exactly():
    rows = [{"epoch": 1, "lr": 0.1, "loss": 1 / 3, "acc": 12.345678901234567, "note": "a"},
            {"epoch": 2, "lr": 1e-17, "loss": 2 / 7, "acc": 100.0, "note": "b"}]
    assert epochs_from_csv(epochs_to_csv(rows)) == rows


def test_summary_scores_both_networks_over_last_epochs():
    record = make_record(RunConfig(), top1=[float(v) for v in range(1, 15)])  # 14 epochs: 1..14
    s = record.summary
    assert s["online"]["median_last10"] == 9.5  # median of 5..14
    assert s["online"]["median_ref_window11"] == 9.0  # epochs >= E-10: median of 4..14
    assert s["online"]["final"] == 14.0 and s["online"]["best_epoch"] == 14
    assert s["ema"]["final"] == 14.5 and s["ema"]["final_top5"] == 16.0
    assert s["train_images_per_s"] == pytest.approx(14 * 100 / 1.5)


def test_publish_then_load_gives_the_same_record(tmp_path):
    store = ResultsStore(tmp_path)
    config = RunConfig(method="cutmix", dataset="synthetic", seed=2, method_params={"alpha": 0.2})
    record = make_record(config)
    run_dir = store.publish(record)
    assert run_dir == tmp_path / "synthetic" / "cutmix" / config.key()
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "environment.json", "epochs.csv",
                                                        "summary.json"]
    loaded = store.load(config)
    assert (loaded.config, loaded.epochs, loaded.summary, loaded.environment) == (
        config, record.epochs, record.summary, record.environment)
    assert store.load(config.replace(seed=3)) is None


def test_a_crash_while_writing_never_leaves_a_half_run(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    config = RunConfig(dataset="synthetic")
    real_write = results.atomic_write_json

    def crash_on_summary(path, obj):
        if path.name == "summary.json":
            raise OSError("disk full")
        real_write(path, obj)

    monkeypatch.setattr(results, "atomic_write_json", crash_on_summary)
    with pytest.raises(OSError, match="disk full"):
        store.publish(make_record(config))
    assert store.load(config) is None
    assert list((tmp_path / "synthetic" / "mixup").iterdir()) == []  # no staging folder left behind

    monkeypatch.setattr(results, "atomic_write_json", real_write)
    store.publish(make_record(config, top1=(1.0, 2.0)))
    monkeypatch.setattr(results, "atomic_write_json", crash_on_summary)
    with pytest.raises(OSError):  # a failed re-publication keeps the previous complete run
        store.publish(make_record(config, top1=(5.0, 6.0)))
    assert store.load(config).curve("online_top1") == [1.0, 2.0]


def test_a_crash_while_swapping_in_a_new_run_keeps_the_old_one(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    config = RunConfig(dataset="synthetic")
    store.publish(make_record(config, top1=(1.0, 2.0)))
    real_rename, calls = os.rename, []

    def rename_failing_on_the_swap(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # 1: old run moved aside; 2: new run moved in
            raise OSError("power cut")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_failing_on_the_swap)
    with pytest.raises(OSError, match="power cut"):
        store.publish(make_record(config, top1=(5.0, 6.0)))
    monkeypatch.setattr(os, "rename", real_rename)
    assert store.load(config).curve("online_top1") == [1.0, 2.0]
    assert sorted(os.listdir(tmp_path / "synthetic" / "mixup")) == [config.key()]


def test_republishing_replaces_the_run_whole(tmp_path):
    store = ResultsStore(tmp_path)
    config = RunConfig(dataset="synthetic")
    first = make_record(config)
    first.evaluations = {"online": {"ece": 1}, "ema": {"ece": 2}}
    store.publish(first)
    store.publish(make_record(config, top1=(7.0,)))
    again = store.load(config)
    assert again.curve("online_top1") == [7.0] and again.evaluations == {}
    assert sorted(os.listdir(tmp_path / "synthetic" / "mixup")) == [config.key()]


def test_republishing_the_same_numbers_keeps_the_evaluations(tmp_path):
    store = ResultsStore(tmp_path)
    config = RunConfig(dataset="synthetic")
    first = make_record(config)
    first.evaluations = {"online": {"ece": 1}, "ema": {"ece": 2}}
    store.publish(first)
    rerun = make_record(config)
    for row in rerun.epochs:
        row["train_time_s"] = 9.0  # only the wall-clock times differ
    store.publish(rerun)
    assert store.load(config).evaluations == first.evaluations


def test_runs_filters_by_config_fields(tmp_path):
    store = ResultsStore(tmp_path)
    configs = [RunConfig(method=m, dataset="synthetic", seed=s) for m in ("mixup", "cutmix") for s in (0, 1)]
    for config in configs:
        store.publish(make_record(config))
    assert len(store.runs()) == 4
    assert {r.config.seed for r in store.runs(method="cutmix")} == {0, 1}
    assert [r.config for r in store.runs(method="mixup", seed=1)] == [configs[1]]
    with pytest.raises(InvalidParameterError, match="filter"):
        store.runs(methd="mixup")


def test_load_dir_rejects_an_incomplete_directory(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    with pytest.raises(MixreproError, match="missing epochs.csv, summary.json, environment.json"):
        ResultsStore.load_dir(tmp_path)


def test_environment_names_versions_device_and_commit_but_no_host():
    import platform

    import torch

    env = collect_environment("cpu")
    assert env["torch"] == torch.__version__ and env["device_type"] == "cpu"
    assert env["cuda"] is None and env["cpu_count"] >= 1 and env["world_size"] == 1
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and env["cpu_capability"]
    assert set(env["git"]) == {"commit", "dirty"}
    host = platform.node()
    assert len(host) < 6 or host not in json.dumps(env)  # a very short name could occur by chance


def test_dirty_means_uncommitted_code_not_edited_notebooks_or_results(tmp_path):
    import subprocess

    from mixrepro.environment import git_revision

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "mixrepro").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "mixrepro" / "a.py").write_text("x = 1\n")
    (tmp_path / "notebooks" / "page.ipynb").write_text("{}\n")
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    assert git_revision(tmp_path)["dirty"] is False
    (tmp_path / "notebooks" / "page.ipynb").write_text('{"cells": []}\n')  # an executed notebook
    assert git_revision(tmp_path)["dirty"] is False
    (tmp_path / "mixrepro" / "new.py").write_text("y = 2\n")  # new, uncommitted code
    assert git_revision(tmp_path)["dirty"] is True
