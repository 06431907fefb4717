"""Measure what a run costs besides its training steps, in Vanilla training steps (``mixrepro.plans``).

    python scripts/measure_overheads.py notebooks/results/cifar10-jpeg/vanilla/<key>

Needs a finished cpu-budget run whose final weights are in the checkpoint cache. Times 40 Vanilla
training steps (bf16 + channels_last, one thread), then each final evaluation of both networks alone
(fp32, the study's options), then 40 Vanilla steps again, and prints each evaluation as
(Vanilla steps, test images read): the form of ``plans.EVALUATION_VANILLA_STEPS``. Run it beside the
same load the sweep runs under (e.g. two workers), since the steps and the evaluations share it.
"""
from __future__ import annotations

import json
import sys
import time

from mixrepro import distributed
from mixrepro.config import config_for_budget
from mixrepro.data import DATASETS
from mixrepro.evaluate import EVALUATIONS
from mixrepro.plans import DATASET, STUDY_EVALUATION_OPTIONS, evaluation_images
from mixrepro.results import ResultsStore
from mixrepro.training import components
from mixrepro.training.final import evaluate_final_weights
from mixrepro.training.loop import TrainingInterrupted, start_run, train_one_epoch
from mixrepro.training.runtime import make_runtime, pinned_threads, reproducible_kernels

TIMED_STEPS = 40


def vanilla_step_seconds(data_root=None) -> float:
    config = config_for_budget("cpu", method="vanilla", dataset=DATASET, seed=9)
    runtime = make_runtime("cpu", amp=True, channels_last=True, threads=1)
    with reproducible_kernels(runtime.device), pinned_threads(1):
        run = start_run(config, runtime, data_root=data_root)
        batches = components.train_batcher(config, run.dataset, runtime)
        step = distributed.step_function(run.method, runtime.dist)
        seconds = []
        for stop in (5, 5 + TIMED_STEPS):  # the first five steps warm up
            start = time.perf_counter()
            try:
                train_one_epoch(run, step, batches, 0, show=False, stop_after_step=stop)
            except TrainingInterrupted:
                pass
            seconds.append(time.perf_counter() - start)
    return seconds[1] / TIMED_STEPS


def main(run_dir: str) -> None:
    config = ResultsStore.load_dir(run_dir).config
    before = vanilla_step_seconds()
    seconds = {}
    for name in EVALUATIONS.names():
        start = time.perf_counter()
        evaluate_final_weights(config, [name], device="cpu", options=STUDY_EVALUATION_OPTIONS, threads=1)
        seconds[name] = time.perf_counter() - start
    step = (before + vanilla_step_seconds()) / 2
    test_images = config.test_subset or DATASETS.get(config.dataset).num_test
    print(json.dumps({"vanilla_step_s": round(step, 4),
                      "evaluations": {name: [round(s / step), evaluation_images(name, test_images)]
                                      for name, s in seconds.items()}}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
