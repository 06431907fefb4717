"""The contract between a method and the one training loop.

A method owns its whole training step: which mixer, which loss, which extra
networks (Mix Block, generator, EMA encoder). The trainer never branches on a
method's name; it calls, per iteration::

    out = method.training_step(x, y, ctx)   # StepOutput(loss, logs)
    out.loss.backward(); optimizer.step()
    method.after_step(ctx)                   # EMA update etc.

Every method keeps an EMA copy of its classifier (``method.ema``) so every run
reports both the online and the EMA network (book/protocol_notes.md, "How the papers
score a run"): learned methods use theirs as the momentum encoder; for static methods
it is evaluated only.
"""
from __future__ import annotations

import copy
import math
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InvalidParameterError
from ..losses import build_loss
from ..models.base import StagedClassifier


@dataclass
class StepContext:
    """Where the training loop is, and the generator every random draw must use."""

    step: int  # global iteration, 0-based
    total_steps: int
    epoch: int
    generator: torch.Generator

    @property
    def progress(self) -> float:
        """Fraction of training done before this step, in [0, 1)."""
        return self.step / max(1, self.total_steps)


@dataclass
class StepOutput:
    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


def automix_momentum(progress: float, start: float = 0.999, end: float = 0.999999, warm: float = 0.1) -> float:
    """EMA momentum of the AutoMix family (book/protocol_notes.md, "The EMA (momentum) network").

    Constant ``start`` for the first ``warm`` fraction of iterations, then a cosine
    rise to ``end`` at the last iteration.
    """
    if progress <= warm:
        return start
    t = min(1.0, (progress - warm) / (1 - warm))
    return end - (end - start) * (math.cos(math.pi * t) + 1) / 2


# The paper protocol's length on CIFAR: 800 epochs of 50,000 images in batches of 100.
PAPER_TOTAL_STEPS = 800 * 500


def step_scaled_momentum(progress: float, total_steps: int, paper_steps: int = PAPER_TOTAL_STEPS) -> float:
    """The paper's momentum with its averaging horizon rescaled to a run of ``total_steps`` iterations.

    An EMA of momentum m averages over about 1 / (1 - m) iterations. Scaling 1 - m by
    ``paper_steps / total_steps`` keeps that horizon the same *fraction of training* as in the
    paper's 400,000-iteration runs, so a short run's EMA network is as far from its random
    initialisation at the end as the paper's is. Clamped at 0 (the EMA then equals the online
    network) for runs shorter than the paper's first horizon allows.
    """
    scaled = (1.0 - automix_momentum(progress)) * paper_steps / max(1, total_steps)
    return max(0.0, 1.0 - scaled)


def scheduled_momentum(schedule: str, progress: float, total_steps: int) -> float:
    """The EMA momentum of ``schedule`` ('paper' or 'step-scaled', RunConfig.ema_schedule)."""
    if schedule == "paper":
        return automix_momentum(progress)
    if schedule == "step-scaled":
        return step_scaled_momentum(progress, total_steps)
    raise InvalidParameterError("ema_schedule", schedule, "paper or step-scaled")


def ema_horizon(momentum: float) -> float:
    """Iterations an EMA of this momentum effectively averages over, 1 / (1 - m)."""
    return 1.0 / (1.0 - momentum)


def ema_initial_weight(total_steps: int, schedule=automix_momentum) -> float:
    """Weight the initial parameters keep in the final EMA: the product of every step's momentum.

    ``schedule(progress)`` gives the momentum at ``progress = step / total_steps`` (as in
    StepContext); a share near 1 means the EMA network is still mostly its random init.
    """
    return math.exp(sum(math.log(schedule(step / total_steps)) for step in range(total_steps)))


class Method(nn.Module, metaclass=ABCMeta):
    """Base class: a classifier, its EMA copy, and a training step.

    Subclasses set the class attributes below and implement ``training_step``.
    ``params`` holds the method's hyperparameters after validation; its defaults
    are the papers' CIFAR values.
    """

    name: str = ""
    label: str = ""  # display name in tables and figures, e.g. "AutoMix"
    color: str = "#7f7f7f"  # one fixed colour per method across every figure of the book
    # The network the papers score: "online", or "ema" where they report the momentum network.
    scored_network: str = "online"
    # The Decoupled Mixup paper's loss presets for this mixer (its appendix B.3): DM(CE)'s eta
    # ("static" mixers 0.1, "dynamic" ones 1.0) and DM(BCE)'s (t, xi) ("interpolation" or
    # "cutting"); None for a method that takes no DM loss.
    dm_ce_preset: str | None = None
    dm_bce_preset: str | None = None
    # Bump when a change alters the numbers this method's runs produce (the method test
    # tests/test_method_fingerprints.py fails until you do): stored runs record it, and a
    # run made by another version is stale and never reused.
    code_version: int = 1
    default_params: dict = {}
    default_min_lr: float = 0.0  # cosine floor of the reference configs
    # Static methods never run the EMA copy in train mode, so its BN statistics
    # are copied from the online network; learned methods run their momentum
    # encoder in train mode and keep its own statistics (set False).
    ema_copies_buffers: bool = True

    def __init__(self, model: StagedClassifier, num_classes: int, **params):
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.params = self.validate_params({**self.default_params, **params})
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.ema_schedule = "paper"  # the trainer sets the run's RunConfig.ema_schedule

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Reject unknown keys; subclasses extend to check values."""
        unknown = set(params) - set(cls.default_params)
        if unknown:
            raise InvalidParameterError(
                f"{cls.name} parameter", sorted(unknown)[0], f"one of {sorted(cls.default_params)}"
            )
        return params

    @abstractmethod
    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        """One iteration's loss (the trainer calls backward and the optimiser)."""

    def ema_momentum(self, ctx: StepContext) -> float:
        return scheduled_momentum(self.ema_schedule, ctx.progress, ctx.total_steps)

    @torch.no_grad()
    def after_step(self, ctx: StepContext) -> None:
        """Update the EMA copy's parameters (BN buffers come from its own passes or are copied)."""
        m = self.ema_momentum(ctx)
        # One batched call per operation instead of a Python loop over tensors; the same
        # arithmetic (ema * m + (1 - m) * p), so the same bits as the per-tensor update.
        ema_params = list(self.ema.parameters())
        if ema_params:  # the foreach calls refuse empty lists
            torch._foreach_mul_(ema_params, m)
            torch._foreach_add_(ema_params, [p.detach() for p in self.model.parameters()], alpha=1 - m)
        ema_buffers = list(self.ema.buffers())
        if self.ema_copies_buffers and ema_buffers:
            torch._foreach_copy_(ema_buffers, list(self.model.buffers()))

    def param_groups(self) -> list[dict]:
        """The optimiser's parameter groups: one group of every trainable parameter.

        A method may split it (e.g. a Mix Block with its own lr); a group's optional ``"lr_mult"``
        scales the scheduled lr (training/schedule.py). The EMA copy is not trainable.
        """
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def eval_networks(self) -> dict[str, nn.Module]:
        return {"online": self.model, "ema": self.ema}


# A classification loss on mixed targets, for methods that take one (``loss`` names a loss of
# mixrepro.losses; ``loss_params`` override the DM paper's preset the method declares).
LOSS_DEFAULTS = {"loss": "mce", "loss_params": {}}


def method_loss(loss: str, method_cls: type, loss_params: dict):
    """``build_loss`` with the DM paper's preset the method declares (none for vanilla); ``loss_params`` win."""
    if not isinstance(loss_params, dict):
        raise InvalidParameterError("loss_params", loss_params, "a dict of loss parameters")
    preset = {"dm_ce": method_cls.dm_ce_preset, "dm_bce": method_cls.dm_bce_preset}.get(loss)
    return build_loss(loss, preset, **loss_params)
