"""``mixrepro bench`` (mixrepro.training.bench) and the GPU study driver's dry run (scripts/gpu_study.sh)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mixrepro import cli
from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.training.bench import BenchSettings, bench_variants, time_interleaved, validate_settings

REPO = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """A module of scripts/ (not part of the package: it sits above every layer, the CLI included)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_study = load_script("gpu_study")
TINY = ["--dataset", "synthetic", "--width", "0.125", "--batch-size", "16", "--warmup", "1", "--repeats", "2",
        "--threads", "1", "--device", "cpu", "--no-progress"]


def test_time_interleaved_takes_rounds_and_synchronises_around_each_step():
    calls = []

    def step(name, seconds):
        def run():
            calls.append(name)
            time.sleep(seconds)
        return run

    syncs = []
    times = time_interleaved([step("a", 0.001), step("b", 0.02)], 3, lambda: syncs.append(len(calls)))
    assert calls == ["a", "b"] * 3  # one step of each method per round
    assert syncs == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]  # before and after every step
    assert [len(t) for t in times] == [3, 3]
    assert all(t >= 0.02 for t in times[1]) and max(times[0]) < min(times[1])
    with pytest.raises(InvalidParameterError):
        time_interleaved([step("a", 0)], 0, lambda: None)


def test_variants_put_vanilla_first_and_dm_rows_after_their_method():
    names = [v.name for v in bench_variants(["cutmix", "mixup"], ["mixup"])]
    assert names == ["vanilla", "cutmix", "mixup", "mixup+dm_ce"]
    dm = bench_variants(["mixup"], ["cutmix"])[-1]
    assert (dm.name, dm.method, dm.params) == ("cutmix+dm_ce", "cutmix", {"loss": "dm_ce"})
    every = [v.name for v in bench_variants()]
    assert every[0] == "vanilla" and "puzzlemix" in every and len(every) == len(set(every))
    with pytest.raises(UnknownNameError, match="unknown method 'mixupp'"):
        bench_variants(["mixupp"])
    with pytest.raises(UnknownNameError):
        bench_variants(["mixup"], ["nope"])
    with pytest.raises(InvalidParameterError, match="adautomix parameter"):
        bench_variants(["adautomix"], ["adautomix"])  # AdAutoMix has no loss to swap
    assert [v.name for v in bench_variants(["automix"], ["automix"])] == ["vanilla", "automix", "automix+dm_ce"]


def test_vary_rows_time_one_parameter_per_row_right_after_their_method():
    rows = bench_variants(["adautomix", "mixup"], (), ["adautomix.num_sources=2,4,5"])
    assert [(v.name, v.method, v.params) for v in rows] == [
        ("vanilla", "vanilla", {}), ("adautomix", "adautomix", {}),
        ("adautomix[num_sources=2]", "adautomix", {"num_sources": 2}),
        ("adautomix[num_sources=4]", "adautomix", {"num_sources": 4}),
        ("adautomix[num_sources=5]", "adautomix", {"num_sources": 5}), ("mixup", "mixup", {})]
    # a varied method not listed gets its default row too; values are read as --set reads them
    assert [v.name for v in bench_variants(["vanilla"], (), ["mixup.alpha=0.2"])] == ["vanilla", "mixup",
                                                                                       "mixup[alpha=0.2]"]
    with pytest.raises(InvalidParameterError, match="an integer in 2..5"):
        bench_variants(["adautomix"], (), ["adautomix.num_sources=1"])
    with pytest.raises(InvalidParameterError, match="one of .*num_sources"):
        bench_variants(["adautomix"], (), ["adautomix.sources=2"])
    with pytest.raises(InvalidParameterError, match="METHOD.PARAM=V1,V2"):
        bench_variants(["adautomix"], (), ["adautomix"])
    with pytest.raises(UnknownNameError):
        bench_variants(["adautomix"], (), ["adaautomix.num_sources=2"])


@pytest.mark.parametrize("change,error", [
    ({"width": 0}, InvalidParameterError), ({"batch_size": 0}, InvalidParameterError),
    ({"repeats": 0}, InvalidParameterError), ({"warmup": 0}, InvalidParameterError),
    ({"threads": 0}, InvalidParameterError), ({"precision": "fp16"}, InvalidParameterError),
    ({"batch_size": 2.5}, InvalidParameterError), ({"model": "resnet7"}, UnknownNameError),
    ({"dataset": "cifar11"}, UnknownNameError),
])
def test_settings_are_validated(change, error):
    with pytest.raises(error):
        validate_settings(BenchSettings(**change))


def test_bench_command_measures_every_method_and_saves_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    argv = ["bench", "--methods", "mixup", "cutmix", "--dm-on", "mixup", "--json", "--out", str(tmp_path), *TINY]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    rows = {r["method"]: r for r in printed["rows"]}
    assert list(rows) == ["vanilla", "mixup", "mixup+dm_ce", "cutmix"]
    assert rows["vanilla"]["ratio_to_vanilla"] == 1.0
    assert rows["mixup+dm_ce"]["method_params"] == {"loss": "dm_ce"}
    for r in rows.values():
        assert len(r["step_seconds"]) == 2 and r["seconds_per_step"] > 0
        assert r["images_per_s"] == pytest.approx(16 / r["seconds_per_step"])
        assert r["peak_memory_mb"] is None and math.isfinite(r["last_loss"])  # no invented CPU peak
    assert "n/a" in err and "mixup+dm_ce" in err  # the table
    path = Path(printed["file"])
    assert path.parent == tmp_path / "bench" / "cpu" and path.suffix == ".json"
    saved = json.loads(path.read_text())
    assert saved["rows"] == printed["rows"]
    assert saved["settings"]["threads"] == 1 and saved["settings"]["precision"] == "fp32"
    assert saved["settings"]["channels_last"] is False and saved["settings"]["width"] == 0.125
    assert {"device_name", "torch", "git", "runtime"} <= set(saved["environment"])
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no temp file left


def test_bench_command_reports_unknown_methods_and_bad_numbers(capsys):
    assert cli.main(["bench", *TINY, "--methods", "vanila"]) == 2
    assert "unknown method 'vanila'; known methods: adautomix" in capsys.readouterr().err
    assert cli.main(["bench", *TINY, "--repeats", "-1"]) == 2  # the last value given wins
    assert "invalid value for repeats: -1" in capsys.readouterr().err


def test_compare_curves_applies_the_tolerance_to_the_tail_mean():
    ref = [2.3, 2.2, 2.0, 1.9, 1.8]
    close = [2.3, 2.4, 1.8, 1.92, 1.79]  # noisy per step, same tail mean within 1%
    r = gpu_study.compare_curves(ref, close, tail=2, tolerance=0.01)
    assert r["within_tolerance"] and r["first_step_rel_diff"] == 0.0
    assert r["max_rel_diff"] == pytest.approx(0.1) and r["max_rel_diff_step"] in (2,)
    far = gpu_study.compare_curves(ref, [2.3, 2.2, 2.0, 2.0, 1.9], tail=2, tolerance=0.01)
    assert not far["within_tolerance"] and far["tail_rel_diff"] == pytest.approx(0.2 / 3.7)
    assert not gpu_study.compare_curves(ref, [2.3, 2.2, 2.0, float("nan"), 1.8], 2, 1.0)["within_tolerance"]
    with pytest.raises(InvalidParameterError):
        gpu_study.compare_curves(ref, ref[:3], tail=2, tolerance=0.01)


def test_forward_flops_of_the_cifar_resnet18():
    # 0.56 G multiply-adds per 32x32 image is the usual figure for this network
    flops = gpu_study.forward_flops_per_image("resnet18", 1.0, 10)
    assert 1.05e9 < flops < 1.2e9
    assert gpu_study.forward_flops_per_image("resnet18", 0.5, 10) < flops / 3.5  # convs scale with width^2


def test_stop_group_ends_a_child_and_what_it_started(tmp_path):
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);" \
             "print('up', flush=True); time.sleep(60)"
    proc = gpu_study.start_child([sys.executable, "-c", script], tmp_path / "child.log")
    deadline = time.time() + 20
    while "up" not in gpu_study.tail_of(tmp_path / "child.log") and time.time() < deadline:
        time.sleep(0.1)
    assert gpu_study.stop_group(proc, grace_s=5).startswith("stopped")
    deadline = time.time() + 10
    while time.time() < deadline:  # the orphaned grandchild is reaped a moment later
        alive = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not alive:
            break
        time.sleep(0.2)
    assert alive == []  # the grandchild went with it


@pytest.mark.slow
def test_gpu_study_dry_run_writes_its_summary_within_the_deadline(tmp_path):
    out, empty = tmp_path / "out", tmp_path / "no-data"
    empty.mkdir()
    # no data: the sweep worker fails fast instead of decoding 60,000 JPEGs on a shared CPU
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "MIXREPRO_DATA": str(empty)}
    start = time.time()
    # 40 s rather than the dry run's 20, so that every phase gets its turn on a loaded 2-core machine
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_study.sh"), "--dry-run", "--workers", "1",
                           "--budget-s", "40"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.time() - start < 60
    summary = json.loads((out / "summary.json").read_text())
    # the workers are stopped stop_margin_s before the deadline: their shutdown and the packing fit in it
    assert summary["dry_run"] and summary["deadline_s"] == 40 and summary["elapsed_s"] < 40 + 1
    phases = summary["phases"]
    assert set(phases) == {"data", "validate", "flops", "bench", "sweep"}
    assert not [name for name, p in phases.items() if "error" in p]
    curves = phases["validate"]["curves"]
    assert len(curves["fp32"]["losses"]) == gpu_study.DRY_RUN.validate_steps
    assert "within_tolerance" in curves["bf16-cl"]["against_fp32"]
    assert set(curves["bf16-cl-compile"]) & {"losses", "skipped", "error"}  # compiled, or said why not
    rows = phases["bench"]["methods"]["0.0625"]["rows"]
    assert [r["method"] for r in rows] == ["vanilla", "mixup", "mixup+dm_ce"]
    assert phases["flops"]["widths"]["0.0625"]["floor_images_per_s"] > 0
    assert phases["sweep"]["finished_runs"] == []
    assert sorted(p.name for p in out.iterdir()) == ["results.tar.gz", "study.log", "summary.json"]
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.startswith("results/bench/cpu/") and n.endswith(".json") for n in names)
    assert "results/logs/worker-0.log" in names
    for pid in phases["sweep"]["worker_pids"]:
        assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
