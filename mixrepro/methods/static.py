"""Static mixing methods (a fixed mixer followed by a loss) and the vanilla baseline.

A static method's whole training step (``StaticMixMethod.training_step``)::

    logits, target = self.mixed_forward(x, y, ctx.generator)   # mix the batch, run the classifier
    loss = self.loss_fn(logits, target)                         # mce (default), bce, dm_ce or dm_bce
    return StepOutput(loss, {"lam": weight of y in sample 0})

Parameters of each method: its mixer's (``alpha`` and the mixer's options, see
``mixrepro.mixers``), ``loss`` (a name of ``mixrepro.losses.build_loss``) and
``loss_params`` (passed to ``build_loss`` over the preset the DM paper gives for
the mixer: eta 0.1 for static mixers; (t, xi) = (1, 0.8) for cutting-based mixers,
(0.5, 1) for Mixup and ManifoldMix; DM appendix B.3). Cosine floor 0 (reference configs;
book/protocol_notes.md, "Optimiser and learning-rate schedule").
The EMA copy kept by ``Method`` is evaluated only.

Default alphas are the CIFAR values; ``PAPER_ALPHA[(method, setting)]`` holds the
per-dataset values of the AutoMix paper (ECCV 2022), appendix A.1, "Reproduction settings".
"""
from __future__ import annotations

import torch

from ..errors import UnknownNameError
from ..mixers import MixTarget, build_mixer, mixer_defaults
from .base import LOSS_DEFAULTS, Method, StepContext, StepOutput, method_loss
from .registry import METHODS

PAPER_ALPHA_SOURCE = "AutoMix (ECCV 2022), appendix A.1, 'Reproduction settings'"
ALPHA_SETTINGS = {
    "cifar": "CIFAR-10 and CIFAR-100",
    "imagenet_r18": "Tiny-ImageNet and ImageNet-1k, PyTorch-style training, ResNet-18",
    "imagenet_r50": "Tiny-ImageNet and ImageNet-1k, PyTorch-style training, ResNet-50 and larger",
    "inat_r18": "iNat2017 and iNat2018, ResNet-18",
    "inat_r50": "iNat2017 and iNat2018, ResNet-50 and ResNeXt-101",
    "imagenet_deit_rsb": "ImageNet-1k with the DeiT or RSB A2/A3 training settings",
    "places205": "Places205, PyTorch-style training",
    "fine_grained": "CUB-200 and FGVC-Aircraft",
}
_ALPHA_ROWS = {  # columns in the order of ALPHA_SETTINGS
    "mixup": (1.0, 0.2, 1.0, 0.2, 0.2, 0.2, 0.2, 1.0),
    "cutmix": (0.2, 0.2, 1.0, 0.2, 1.0, 0.2, 0.2, 1.0),
    "manifoldmix": (2.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.5),
    "saliencymix": (0.2, 0.2, 1.0, 0.2, 1.0, 0.2, 0.2, 0.2),
    "fmix": (0.2, 0.2, 1.0, 0.2, 1.0, 0.2, 0.2, 0.2),
    "resizemix": (1.0, 0.2, 1.0, 0.2, 1.0, 0.2, 0.2, 1.0),
}
PAPER_ALPHA: dict[tuple[str, str], float] = {
    (method, setting): alpha for method, row in _ALPHA_ROWS.items() for setting, alpha in zip(ALPHA_SETTINGS, row)
}


def paper_alpha(method: str, setting: str = "cifar") -> float:
    """The alpha the AutoMix appendix uses for static ``method`` in ``setting`` (a key of ALPHA_SETTINGS)."""
    if method not in _ALPHA_ROWS:
        raise UnknownNameError("static method", method, _ALPHA_ROWS)
    if setting not in ALPHA_SETTINGS:
        raise UnknownNameError("alpha setting", setting, ALPHA_SETTINGS)
    return PAPER_ALPHA[(method, setting)]


def static_defaults(mixer: str) -> dict:
    """Default parameters of the static method for ``mixer``: its options, the CIFAR alpha, the loss."""
    return {**mixer_defaults(mixer), "alpha": paper_alpha(mixer, "cifar"), **LOSS_DEFAULTS}


class StaticMixMethod(Method):
    """A static mixer followed by a classification loss; subclasses name the mixer."""

    mixer_name: str | None = None
    summary: str = ""
    default_min_lr = 0.0

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        self.mixer, self.loss_fn = self.build_parts(self.params)

    @classmethod
    def build_parts(cls, params: dict):
        """(mixer or None, loss) from validated-key ``params``; raises on invalid values."""
        mixer_params = {k: v for k, v in params.items() if k not in LOSS_DEFAULTS}
        mixer = build_mixer(cls.mixer_name, **mixer_params) if cls.mixer_name else None
        return mixer, method_loss(params["loss"], cls, params["loss_params"])

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        params = super().validate_params(params)
        cls.build_parts(params)  # checks every value now, also when called without a model
        return params

    def mixed_forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """(logits of the mixed batch, its MixTarget)."""
        x_mix, target = self.mixer(x, y, generator)
        return self.model(x_mix), target

    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        logits, target = self.mixed_forward(x, y, ctx.generator)
        loss = self.loss_fn(logits, target)
        # a float64 tensor, not float(): no host synchronisation inside a step on CUDA, same mean
        return StepOutput(loss, {"lam": target.weights[0, 0].detach().double()})

    @classmethod
    def describe(cls) -> dict:
        """One row for ``mixrepro methods``: summary, mixer, defaults, cosine floor, where alpha comes from."""
        return {"method": cls.name, "summary": cls.summary, "mixer": cls.mixer_name, "min_lr": cls.default_min_lr,
                "defaults": dict(cls.default_params),
                "alpha_source": PAPER_ALPHA_SOURCE if cls.mixer_name else None}


@METHODS.register("vanilla")
class VanillaMethod(StaticMixMethod):
    name = "vanilla"
    label, color = "Vanilla", "#555555"
    summary = "no mixing: the loss (plain cross-entropy by default) on the clean batch"
    default_params = dict(LOSS_DEFAULTS)

    def mixed_forward(self, x, y, generator):
        return self.model(x), MixTarget.clean(y)


@METHODS.register("mixup")
class MixupMethod(StaticMixMethod):
    name = mixer_name = "mixup"
    label, color = "Mixup", "#1f77b4"
    dm_ce_preset, dm_bce_preset = "static", "interpolation"
    summary = "Mixup: lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha)"
    default_params = static_defaults("mixup")


@METHODS.register("cutmix")
class CutMixMethod(StaticMixMethod):
    name = mixer_name = "cutmix"
    label, color = "CutMix", "#ff7f0e"
    dm_ce_preset, dm_bce_preset = "static", "cutting"
    summary = "CutMix: a random box of x[perm] of area (1 - lam), label from the clipped box"
    default_params = static_defaults("cutmix")


@METHODS.register("manifoldmix")
class ManifoldMixMethod(StaticMixMethod):
    """Mixup of hidden features at a random stage; the mixer runs the model (``mixers.manifoldmix``)."""

    name = mixer_name = "manifoldmix"
    label, color = "ManifoldMix", "#2ca02c"
    dm_ce_preset, dm_bce_preset = "static", "interpolation"
    summary = "ManifoldMix: Mixup of the features after a random stage in `stages` (0 = input)"
    default_params = static_defaults("manifoldmix")

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        for stage in self.mixer.stages:
            model.check_stage(stage)

    def mixed_forward(self, x, y, generator):
        return self.mixer(self.model, x, y, generator)


@METHODS.register("saliencymix")
class SaliencyMixMethod(StaticMixMethod):
    name = mixer_name = "saliencymix"
    label, color = "SaliencyMix", "#d62728"
    dm_ce_preset, dm_bce_preset = "static", "cutting"
    summary = "SaliencyMix: CutMix box centred on the saliency peak of x[perm[0]]"
    default_params = static_defaults("saliencymix")

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        # saliency_input="reference-float" reads the normalised tensor, as the reference code does
        self.mixer.normalize = getattr(model, "normalize", None)


@METHODS.register("fmix")
class FMixMethod(StaticMixMethod):
    name = mixer_name = "fmix"
    label, color = "FMix", "#9467bd"
    dm_ce_preset, dm_bce_preset = "static", "cutting"
    summary = "FMix: binary low-frequency Fourier mask holding round(lam * H * W) pixels of x"
    default_params = static_defaults("fmix")


@METHODS.register("resizemix")
class ResizeMixMethod(StaticMixMethod):
    name = mixer_name = "resizemix"
    label, color = "ResizeMix", "#8c564b"
    dm_ce_preset, dm_bce_preset = "static", "cutting"
    summary = "ResizeMix: x[perm] resized into a random box of scale tau ~ U(scope), lam = 1 - box area"
    default_params = static_defaults("resizemix")
