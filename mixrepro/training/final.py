"""Evaluations of a finished run from its final weights in the checkpoint cache."""
from __future__ import annotations

import time

import torch

from ..config import RunConfig
from ..errors import MissingWeightsError
from . import checkpoint as ckpt
from . import components
from .runtime import make_runtime, pinned_threads, reproducible_kernels


def load_final_method(config: RunConfig, runtime, *, data_root=None, command: str = ""):
    """(dataset, method) of a finished run, its method holding the final weights."""
    path = ckpt.checkpoint_path(config)
    saved = ckpt.load_checkpoint(path, config)
    if saved is None or saved["state"]["epoch"] < config.epochs:
        raise MissingWeightsError(config, path, command)
    dataset = components.load_run_data(config, data_root)
    method = components.build_run_method(config, dataset, runtime)
    method.load_state_dict(saved["method"])
    return dataset, method


def evaluate_final_weights(config: RunConfig, names, *, device=None, data_root=None, command: str = "",
                           options: dict | None = None, threads: int | None = None, on_evaluation=None) -> dict:
    """{'online': {name: result}, 'ema': {...}} from mixrepro.evaluate.run_evaluations.

    ``options[name]``: keyword arguments of evaluation ``name`` (e.g. ``{"corruption": {"images": 2000}}``).
    fp32 and the default memory layout whatever the device, so attacks and calibration
    are measured at full precision; each network gets the same seeded draws. ``threads`` pins
    torch's intra-op threads for the evaluations (None: torch's current count). One evaluation of
    both networks at a time, each ending with ``on_evaluation({network: {name: result}}, timing)``
    (``timing``: its wall seconds for both networks, the device and the thread count), so a caller
    can keep it before the next starts; every evaluation starts from the same seeded state, so
    which ones run together does not change a number.
    """
    from ..evaluate import run_evaluations

    runtime = make_runtime(device, amp=False, channels_last=False, threads=threads)
    with reproducible_kernels(runtime.device), pinned_threads(runtime.threads):
        dataset, method = load_final_method(config, runtime, data_root=data_root, command=command)
        networks = method.eval_networks()
        results = {network_name: {} for network_name in networks}
        for name in names:
            done, start = {}, time.perf_counter()
            for network_name, network in networks.items():
                generator = torch.Generator().manual_seed(components.derived_seed(config.seed, "evaluations"))
                done[network_name] = run_evaluations(network, dataset.test_x, dataset.test_y, [name],
                                                     runtime.device, generator, options=options)
                results[network_name].update(done[network_name])
            if on_evaluation is not None:
                on_evaluation(done, {"seconds": round(time.perf_counter() - start, 3),
                                     "device": str(runtime.device), "threads": torch.get_num_threads()})
    return results
