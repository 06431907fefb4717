"""The evaluations of the study, as functions usable from notebooks and the trainer.

One file per evaluation: ``accuracy`` (top-k, the scored number of a run),
``calibration`` (ECE, reliability diagrams), ``fgsm``, ``corruption``,
``occlusion``, ``mixed_accuracy``; ``confidence`` stores each test image's confidence and
correctness (``predictions``), so ECEs can be compared by a paired bootstrap over images.
(The cost of a training step is measured by
``mixrepro bench``, in ``mixrepro.training.bench``.)

``EVALUATIONS`` maps a name to a function
``f(model, test_x, test_y, *, device, generator, batch_size, **options) -> dict``
(JSON-able) taking the test set as the dataset stores it (uint8 [N, H, W, C],
int64 [N]); :func:`run_evaluations` runs several. Each evaluation starts from a
copy of ``generator``'s state, so its random draws (corruption noise, occlusion
patches) do not depend on which other evaluations run, and two networks evaluated
with equal generators (online and EMA) see identical corrupted/occluded images.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.subsets import balanced_subset
from ..errors import InvalidParameterError
from ..registry import Registry
from .accuracy import array_batches, evaluate_topk, predict_logits, score_last_epochs, topk_accuracy
from .calibration import calibration_report, ece, ece_reference_sorted, reliability_diagram_data
from .corruption import corruption_accuracy
from .fgsm import PAPER_EPS, fgsm_accuracy, fgsm_examples
from .mixed_accuracy import mixed_sample_accuracy
from .occlusion import PAPER_RATIOS, occlusion_accuracy

EVALUATIONS: Registry = Registry("evaluation")
EVALUATION_SUBSET_SEED = 0  # one fixed image order for every run's subset evaluations
# Forward batches of 100 images: on one CPU thread a trained width-16 ResNet-18 in fp32 evaluates ECE
# 1.1-1.3x and FGSM 1.1x faster than in batches of 500 (measured beside two training processes); each
# image's logits (and FGSM's input-gradient sign) do not depend on the batch, so every number is the
# same: a test checks it, and SAMix seed 1's stored evaluations (made at 500) came back bit for bit.
EVALUATION_BATCH_SIZE = 100
# Mixed-sample accuracy pairs images within a batch: its batches stay at the study's 500 whatever the
# forward batch, so the pairs (and the number) never change.
MIXED_PAIR_BATCH_SIZE = 500


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


@EVALUATIONS.register("accuracy")
def _accuracy(model, test_x, test_y, *, device, generator, batch_size):
    logits, labels = predict_logits(model, array_batches(test_x, test_y, batch_size, device))
    return topk_accuracy(logits, labels, ks=(1, 5) if logits.shape[1] >= 5 else (1,))


@EVALUATIONS.register("ece")
def _ece(model, test_x, test_y, *, device, generator, batch_size, bins=(10, 15)):
    logits, labels = predict_logits(model, array_batches(test_x, test_y, batch_size, device))
    return {"top1": topk_accuracy(logits, labels, ks=(1,))["top1"],
            **calibration_report(logits, labels, bins, from_logits=True)}


@EVALUATIONS.register("confidence")
def _confidence(model, test_x, test_y, *, device, generator, batch_size):
    """Per test image: confidence and whether it is right (the inputs of ECE, for paired bootstraps)."""
    from .calibration import confidence_and_correct
    from .predictions import encode_confidence

    logits, labels = predict_logits(model, array_batches(test_x, test_y, batch_size, device))
    return encode_confidence(*confidence_and_correct(logits, labels, from_logits=True))


@EVALUATIONS.register("fgsm")
def _fgsm(model, test_x, test_y, *, device, generator, batch_size, eps=PAPER_EPS):
    return fgsm_accuracy(model, array_batches(test_x, test_y, batch_size, device), eps)


def image_subset(test_x, test_y, images: int | None):
    """The first ``images`` of a fixed class-balanced order of the test set (all when None).

    Evaluations that cost a forward pass per variant (corruption: 12 x 5 passes, occlusion:
    one per ratio) may run on a subset at reduced budgets; the order is seeded once (not per run), so every run of a
    study sees the same images, and a smaller subset is a prefix of a larger one.
    """
    if images is None:
        return test_x, test_y, None
    if isinstance(images, bool) or not isinstance(images, int) or not 0 < images <= len(test_y):
        raise InvalidParameterError("images", images, f"None (all) or an integer in 1..{len(test_y)}")
    index = balanced_subset(test_y, images, seed=EVALUATION_SUBSET_SEED)
    return test_x[index], test_y[index], images


@EVALUATIONS.register("corruption")
def _corruption(model, test_x, test_y, *, device, generator, batch_size, images=None, **options):
    test_x, test_y, images = image_subset(test_x, test_y, images)
    result = corruption_accuracy(model, test_x, test_y, seed=_seed(generator), batch_size=batch_size,
                                 device=device, **options)
    return {**result, "images": images if images is not None else len(test_y)}


@EVALUATIONS.register("occlusion")
def _occlusion(model, test_x, test_y, *, device, generator, batch_size, ratios=PAPER_RATIOS, images=None,
               **options):
    seed = _seed(generator)
    test_x, test_y, _ = image_subset(test_x, test_y, images)
    top1 = occlusion_accuracy(model, test_x, test_y, ratios, seed=seed, batch_size=batch_size,
                              device=device, **options)
    return {"top1": {f"{r:g}": v for r, v in top1.items()}, "seed": seed, "images": len(test_y), **options}


@EVALUATIONS.register("mixed_accuracy")
def _mixed_accuracy(model, test_x, test_y, *, device, generator, batch_size, mixer=None, mixer_params=None,
                    same_label="exclude", pair_batch_size=MIXED_PAIR_BATCH_SIZE):
    """``mixer``: a mixer callable, or a name of ``mixrepro.mixers.MIXERS`` built with ``mixer_params``.
    Images are paired within batches of ``pair_batch_size`` (``batch_size`` is not used)."""
    if isinstance(mixer, str):
        from ..mixers import build_mixer

        name, mixer = mixer, build_mixer(mixer, **(mixer_params or {}))
    elif mixer is None:
        allowed = "a mixer name (e.g. 'mixup') or callable (x, y, generator) -> (x_mix, MixTarget)"
        raise InvalidParameterError("mixed_accuracy mixer", None, allowed)
    else:
        name = getattr(mixer, "name", type(mixer).__name__)
    # Pairs are drawn within a batch: shuffle first, or a test set stored class by class (the
    # CIFAR-10 JPEG copy) would pair every image with its own class.
    order = torch.randperm(len(test_y), generator=generator)
    batches = array_batches(test_x[order], test_y[order], pair_batch_size, device)
    return {**mixed_sample_accuracy(model, batches, mixer, generator, same_label), "mixer": name,
            "mixer_params": mixer_params or {}}


def run_evaluations(
    model: nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, names: Sequence[str], device=None,
    generator: torch.Generator | None = None, *, batch_size: int = EVALUATION_BATCH_SIZE, options: dict | None = None,
) -> dict:
    """{name: result} for each evaluation in ``names``; ``options[name]`` are extra keyword arguments.

    Unknown names fail before anything runs. ``generator`` defaults to seed 0; it
    is not advanced (each evaluation draws from its own copy of its state).
    """
    options = options or {}
    functions = {name: EVALUATIONS.get(name) for name in names}
    for name in options:
        EVALUATIONS.get(name)
    if device is None:
        from .accuracy import model_device

        device = model_device(model)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    results = {}
    for name, fn in functions.items():
        own = torch.Generator().set_state(generator.get_state())
        results[name] = fn(model, test_x, test_y, device=device, generator=own, batch_size=batch_size,
                           **options.get(name, {}))
    return results


__all__ = [
    "EVALUATIONS", "run_evaluations", "predict_logits", "evaluate_topk", "topk_accuracy", "score_last_epochs",
    "array_batches", "ece", "ece_reference_sorted", "reliability_diagram_data", "calibration_report",
    "fgsm_examples", "fgsm_accuracy", "corruption_accuracy", "occlusion_accuracy", "mixed_sample_accuracy",
]
