"""``mixrepro train`` / ``mixrepro eval``: argument validation, the printed result, end to end."""
from types import SimpleNamespace
import json
import shlex
import time

import pytest

import mixrepro.data
import mixrepro.methods.registry as method_registry
from mixrepro import cli
from mixrepro.config import RunConfig, config_for_budget
from mixrepro.registry import Registry
from mixrepro.results import ResultsStore
from mixrepro.runs import train_command
from mixrepro.training.command import config_from_args
from doubles import METHOD_DOUBLES, install_doubles


@pytest.fixture
def doubles(tmp_path, monkeypatch):
    """The tiny method doubles registered as methods, the trainer routed to the test data."""
    registry = Registry("method")
    for name, cls in METHOD_DOUBLES.items():
        registry.add(name, cls)
    monkeypatch.setattr(method_registry, "METHODS", registry)
    datasets = Registry("dataset")
    for name, spec in mixrepro.data.DATASETS.items():
        datasets.add(name, spec)
    datasets.add("fake", SimpleNamespace(kind="array"))  # only its kind is read before the doubles load it
    monkeypatch.setattr(mixrepro.data, "DATASETS", datasets)
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    install_doubles(monkeypatch)


def parse(argv):
    return cli.build_parser().parse_args(argv)


def test_set_items_are_typed_and_checked(doubles):
    args = parse(["train", "--method", "tiny", "--dataset", "fake", "--budget", "cpu", "--seed", "2",
                  "--set", "epochs=3", "--set", "lr=0.2", "--set", "min_lr=none", "--set", "test_subset=none",
                  "--set", "model=resnet34", "--set", "method.alpha=0.5"])
    config = config_from_args(args)
    assert config == config_for_budget("cpu", method="tiny", dataset="fake", seed=2, epochs=3, lr=0.2,
                                       min_lr=None, test_subset=None, model="resnet34",
                                       method_params={"alpha": 0.5})
    assert isinstance(config.epochs, int) and isinstance(config.lr, float)


@pytest.mark.parametrize("argv,message", [
    (["--set", "epoch=3"],
     "invalid value for --set key: 'epoch'; allowed: one of batch_size, ema_schedule, epochs, lr"),
    (["--set", "method.beta=3"], "method.alpha"),
    (["--set", "epochs=2.5"], "invalid value for epochs: '2.5'; allowed: int"),
    (["--set", "epochs=0"], "invalid value for epochs: 0"),
    (["--set", "epochs"], "key=value"),
    (["--budget", "huge"], "unknown budget 'huge'; known budgets: cpu, cpu-short, gpu, paper, smoke"),
    (["--seed", "-1"], "invalid value for seed"),
    (["--device", "cuda:0"], "invalid value for device"),
    (["--device", "tpu"], "invalid value for device"),
])
def test_train_errors_exit_2_with_a_message(doubles, tmp_path, capsys, argv, message):
    code = cli.main(["train", "--method", "tiny", "--dataset", "fake", "--out", str(tmp_path), "--no-progress",
                     "--set", "epochs=1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mixrepro: error: ") and message in err, err


@pytest.mark.parametrize("argv,message", [
    (["--method", "mixupp", "--dataset", "fake"], "unknown method 'mixupp'; known methods: tiny, tiny_ce"),
    (["--method", "tiny", "--dataset", "cifar11"], "unknown dataset 'cifar11'; known datasets: "),
    (["--method", "tiny", "--dataset", "fake", "--set", "model=resnet19"], "unknown model 'resnet19'"),
    (["--method", "tiny", "--dataset", "cub200"], "'cub200' is a 'files' dataset, which it does not train"),
    (["--method", "tiny", "--dataset", "cifar10-c"], "allowed: a dataset the trainer can train (cifar10, "),
])
def test_unknown_names_list_the_known_ones(doubles, capsys, argv, message):
    assert cli.main(["train", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("config", [
    config_for_budget("smoke", method="tiny", dataset="fake", seed=3),
    config_for_budget("cpu", method="tiny", dataset="fake", epochs=7, min_lr=0.0, method_params={"alpha": 0.2}),
    RunConfig(method="tiny", dataset="fake", width=0.5, train_subset=640, lr=0.05),
])
def test_train_command_reproduces_the_config(doubles, config):
    command = train_command(config)
    assert command.startswith("mixrepro train ")
    assert config_from_args(parse(shlex.split(command)[1:])) == config


def test_train_command_quotes_structured_method_params():
    import mixrepro.methods  # noqa: F401  (the real registry)

    config = config_for_budget("cpu", method="mixup", dataset="synthetic", seed=1,
                               method_params={"loss": "dm_ce", "loss_params": {"eta": 0.5}})
    command = train_command(config, "/tmp/some results")
    assert "--set 'method.loss_params={\"eta\": 0.5}'" in command and "--out '/tmp/some results'" in command
    args = parse(shlex.split(command)[1:])
    assert config_from_args(args) == config and args.out == "/tmp/some results"


def test_train_then_eval_end_to_end(doubles, tmp_path, capsys):
    out = tmp_path / "results"
    code = cli.main(["train", "--method", "tiny", "--dataset", "fake", "--set", "epochs=2", "--set", "batch_size=16",
                     "--out", str(out),
                     "--device", "cpu", "--no-progress"])
    line = capsys.readouterr().out.strip()
    assert code == 0 and len(line.splitlines()) == 1
    config = config_for_budget("smoke", method="tiny", dataset="fake", epochs=2, batch_size=16)
    record = ResultsStore(out).load(config)
    assert line.endswith(f"-> {record.run_dir}")
    assert f"EMA {record.summary['ema']['final']:.2f}" in line and "img/s" in line

    assert cli.main(["eval", str(record.run_dir), "--evaluations", "ece", "fgsm", "accuracy"]) == 0
    stored = json.loads((record.run_dir / "evaluations.json").read_text())
    assert set(stored) == {"online", "ema"} and set(stored["online"]) == {"ece", "fgsm", "accuracy"}
    for network in ("online", "ema"):  # the cached final weights are the ones the last epoch scored
        assert stored[network]["accuracy"]["top1"] == record.summary[network]["final"]
    assert "ece" in capsys.readouterr().out

    assert cli.main(["eval", str(record.run_dir), "--evaluations", "ecee"]) == 2
    assert "unknown evaluation 'ecee'" in capsys.readouterr().err
    assert cli.main(["eval", str(tmp_path), "--evaluations", "ece"]) == 2
    assert "not a complete run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_budget_runs_end_to_end_on_the_real_pieces(tmp_path, monkeypatch, capsys):
    """`mixrepro train --method mixup --dataset synthetic --budget smoke` (target: under 60 s on CPU)."""
    import mixrepro.methods  # noqa: F401  (registers the methods)

    if "mixup" not in method_registry.METHODS:
        pytest.skip("the mixup method is not registered yet")
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    start = time.perf_counter()
    code = cli.main(["train", "--method", "mixup", "--dataset", "synthetic", "--budget", "smoke",
                     "--out", str(tmp_path), "--no-progress"])
    seconds = time.perf_counter() - start
    line = capsys.readouterr().out
    print(f"smoke run: {seconds:.1f} s: {line}")
    assert code == 0 and "mixup on synthetic" in line
    record = ResultsStore(tmp_path).runs(method="mixup")[0]
    assert record.summary["online"]["final"] > 10.0  # above chance (10 classes) after 2 epochs
    assert seconds < 120
