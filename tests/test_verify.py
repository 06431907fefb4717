"""``mixrepro verify``: a stored run retrained from its record comes back bit for bit, and a changed
number is reported with its column."""
from __future__ import annotations

import csv

import pytest

from mixrepro import cli
from mixrepro.config import config_for_budget
from mixrepro.errors import InvalidParameterError
from mixrepro.results import ResultsStore
from mixrepro.training import fit
from mixrepro.training.checkpoint import checkpoint_path
from mixrepro.verify import column_differences, recorded_runtime, verify_run
from doubles import install_doubles, tiny_config


def _tamper(run_dir, column: str, delta: float, epoch: int | None = None) -> None:
    """Add ``delta`` to ``column`` of 1-based ``epoch`` (None: the last) in the stored epochs.csv."""
    path = run_dir / "epochs.csv"
    rows = list(csv.DictReader(path.open()))
    row = rows[-1] if epoch is None else rows[epoch - 1]
    row[column] = repr(float(row[column]) + delta)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_verify_reproduces_a_run_and_catches_a_changed_number(tmp_path, monkeypatch):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    record = fit(tiny_config(), results_root=tmp_path / "store", progress=False, threads=1)
    assert recorded_runtime(record) == {"device_type": "cpu", "precision": "fp32", "channels_last": False,
                                        "compile": False, "threads": 1}
    result = verify_run(record.run_dir)
    assert result.identical and result.predictions_identical and result.max_abs_difference == {}
    assert "bit for bit" in result.summary()
    _tamper(record.run_dir, "train_loss", 1e-9)
    changed = verify_run(record.run_dir)
    assert not changed.identical and set(changed.max_abs_difference) == {"train_loss"}
    assert changed.max_abs_difference["train_loss"] == pytest.approx(1e-9, rel=1e-3)
    assert cli.main(["verify", str(record.run_dir), "--no-progress"]) == 1


def test_verify_first_epochs_compares_exactly_those(tmp_path, monkeypatch, capsys):
    """``--epochs 1`` of a two-epoch run: a change in epoch 2 goes unseen, one in epoch 1 is caught."""
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    record = fit(tiny_config(epochs=2), results_root=tmp_path / "store", progress=False, threads=1)
    final_weights = checkpoint_path(record.config).read_bytes()
    _tamper(record.run_dir, "train_loss", 1e-9, epoch=2)
    assert not verify_run(record.run_dir).identical  # the whole run sees epoch 2
    first = verify_run(record.run_dir, epochs=1)
    assert first.identical and first.epochs_compared == 1 and first.predictions_identical is None
    assert "first 1 epoch(s) only" in first.summary()
    _tamper(record.run_dir, "online_top1", 0.01, epoch=1)
    caught = verify_run(record.run_dir, epochs=1)
    assert not caught.identical and set(caught.max_abs_difference) == {"online_top1"}
    assert cli.main(["verify", str(record.run_dir), "--epochs", "1", "--no-progress"]) == 1
    assert checkpoint_path(record.config).read_bytes() == final_weights  # retrained into a scratch cache only


@pytest.mark.parametrize("epochs", [0, 3, 1.5, True])
def test_verify_refuses_an_epoch_count_the_run_does_not_have(tmp_path, monkeypatch, epochs):
    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    record = fit(tiny_config(epochs=2), results_root=tmp_path / "store", progress=False, threads=1)
    with pytest.raises(InvalidParameterError, match="from 1 to 2"):
        verify_run(record.run_dir, epochs=epochs)
    with pytest.raises(InvalidParameterError, match="keep_weights"):
        verify_run(record.run_dir, epochs=1, keep_weights=True)


def test_a_recorded_verification_names_the_run_the_outcome_and_both_machines(tmp_path, monkeypatch, capsys):
    from mixrepro.environment import cpu_capability
    from mixrepro.study.overview import verifications_table
    from mixrepro.verify import load_verifications

    install_doubles(monkeypatch)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    record = fit(tiny_config(epochs=2), results_root=tmp_path / "store", progress=False, threads=1)
    assert "No verification is recorded yet" in verifications_table(tmp_path / "store")
    assert cli.main(["verify", str(record.run_dir), "--epochs", "1", "--record", "--no-progress"]) == 0
    assert "recorded in" in capsys.readouterr().out
    _tamper(record.run_dir, "train_loss", 1e-6, epoch=1)
    assert cli.main(["verify", str(record.run_dir), "--epochs", "1", "--record", "--no-progress"]) == 1
    first, second = load_verifications(tmp_path / "store")
    assert first["key"] == record.config.key() and first["run_dir"] == f"fake/tiny/{record.config.key()}"
    assert first["identical"] and (first["epochs_compared"], first["epochs"]) == (1, 2)
    assert not second["identical"] and set(second["max_abs_difference"]) == {"train_loss"}
    assert first["trained_on"]["cpu_capability"] == first["verified_on"]["cpu_capability"] == cpu_capability()
    table = verifications_table(tmp_path / "store")
    assert "**bit for bit**" in table and "**differs**: train_loss by 1e-06" in table and "1 of 2" in table


def test_column_differences_ignore_wall_times_and_name_missing_columns():
    a = [{"epoch": 1, "train_loss": 1.0, "epoch_time_s": 3.0}]
    b = [{"epoch": 1, "train_loss": 1.0, "epoch_time_s": 9.0, "online_top1": 10.0}]
    assert column_differences(a, a) == {}
    assert column_differences(a, [{**a[0], "epoch_time_s": 5.0}]) == {}
    assert column_differences(a, b) == {"online_top1": float("inf")}
    assert column_differences(a, a + a) == {"epochs": 1.0}


@pytest.mark.slow
def test_verify_a_real_smoke_run(tmp_path, monkeypatch, capsys):
    """The real trainer, model and data (synthetic, smoke budget): bit-identical on a retrain."""
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    config = config_for_budget("smoke", method="mixup", dataset="synthetic", epochs=1)
    record = fit(config, results_root=tmp_path / "store", progress=False, threads=1)
    assert cli.main(["verify", str(record.run_dir), "--no-progress"]) == 0
    assert "reproduced bit for bit" in capsys.readouterr().out
    assert ResultsStore(tmp_path / "store").load(config) is not None  # the stored run is untouched
