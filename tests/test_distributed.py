"""Data-parallel training: two gloo processes on halves of each global batch match one process."""
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mixrepro import distributed
from mixrepro.distributed import DistContext
from mixrepro.errors import InvalidParameterError
from mixrepro.training.components import step_generator
from mixrepro.training.loop import Run, TrainState, train_one_epoch
from mixrepro.training.runtime import make_runtime
from mixrepro.training.schedule import build_optimizer
from doubles import FakeBatcher, build_double_method, fake_dataset, tiny_config


def train_one_epoch_as(ctx: DistContext, batch_norm: bool = False) -> dict:
    """One epoch (4 steps of global batch 8); without BN, whose statistics are per rank by design."""
    config = tiny_config(method="tiny_ce", batch_size=8)
    runtime = make_runtime("cpu", dist=ctx)
    dataset = fake_dataset(n_train=32)
    method = build_double_method(config, dataset, runtime, batch_norm=batch_norm)
    run = Run(config, runtime, dataset, method, build_optimizer(config, method.parameters()),
              step_generator(config), TrainState())
    step_fn = distributed.step_function(method, ctx)
    batches = FakeBatcher(dataset.train_x, dataset.train_y, config.batch_size, train=True, device="cpu")
    row = train_one_epoch(run, step_fn, batches, 0, show=False)
    return {"weights": method.state_dict(), "row": row, "steps": run.state.step}


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ctx = DistContext(rank, world, rank)
        torch.save(train_one_epoch_as(ctx), f"{out_dir}/rank{rank}.pt")
        torch.save(train_one_epoch_as(ctx, batch_norm=True), f"{out_dir}/bn_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_single_process_training(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single = train_one_epoch_as(distributed.SINGLE)
    assert ranks[0]["steps"] == ranks[1]["steps"] == single["steps"] == 4
    for key, value in single["weights"].items():
        assert torch.equal(ranks[0]["weights"][key], ranks[1]["weights"][key]), key  # ranks stay in sync
        torch.testing.assert_close(ranks[0]["weights"][key], value, rtol=1e-5, atol=1e-6)
        assert not torch.equal(value, train_initial_weights()[key]), key  # training moved every tensor
    assert ranks[0]["row"]["train_loss"] == pytest.approx(single["row"]["train_loss"], rel=1e-5)
    assert ranks[0]["row"]["scale"] == pytest.approx(single["row"]["scale"])
    assert ranks[0]["row"]["train_images"] == 32  # the global batch, not the rank's share
    bn = [torch.load(tmp_path / f"bn_rank{r}.pt", weights_only=True)["weights"] for r in (0, 1)]
    for key in bn[0]:  # BN statistics differ per slice during the epoch; rank 0's are shared at its end
        assert torch.equal(bn[0][key], bn[1][key]), key


def train_initial_weights() -> dict:
    config = tiny_config(method="tiny_ce", batch_size=8)
    return build_double_method(config, fake_dataset(n_train=32), make_runtime("cpu"), batch_norm=False).state_dict()


def test_local_slice_takes_a_contiguous_share_and_needs_equal_shares():
    batch = torch.arange(8)
    assert distributed.local_slice(batch, distributed.SINGLE) is batch
    assert distributed.local_slice(batch, DistContext(1, 2, 1)).tolist() == [4, 5, 6, 7]
    with pytest.raises(InvalidParameterError, match="a multiple of the number of processes"):
        distributed.local_slice(batch, DistContext(0, 3, 0))


def test_single_process_is_the_default(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env(torch.device("cpu")) == distributed.SINGLE
    assert not dist.is_initialized()
