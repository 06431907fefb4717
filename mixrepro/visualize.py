"""Figures of what a mixing method feeds the classifier: sources, masks, mixed images.

Works for any method with ``mix_for_display(x, y, generator) -> MixDisplay`` (AutoMix, SAMix,
AdAutoMix; static mixers may gain it by returning a ``MixDisplay``, defined in
``mixrepro.methods.mixblock``). The figure is a matplotlib ``Figure`` built without pyplot, so
it leaves no global state behind (safe in notebooks and tests); matplotlib is imported only
when a figure is drawn.
"""
from __future__ import annotations

import torch

# The display record is defined beside the methods that produce it: visualize imports the
# methods' types, never the reverse, so a method never pulls in plotting code.
from .methods.mixblock import MixDisplay

__all__ = ["MixDisplay", "mixed_samples_figure"]


def _image(t: torch.Tensor):
    """[C, H, W] in [0, 1] -> an array imshow understands (HWC, or HW for one channel)."""
    t = t.detach().float().clamp(0, 1).cpu()
    return t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()


def mixed_samples_figure(method, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, n: int = 8,
                         class_names=None):
    """One row per sample: the N sources, their masks (white = 1) and the mixed image.

    Column titles give each source's label weight (lambda) and the mean of its mask, so a mask
    that ignores lambda, or a collapsed (constant) mask, is visible at a glance. Returns a
    ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    n = min(n, len(x))
    shown = method.mix_for_display(x[:n], y[:n], generator)
    num_sources = len(shown.sources)
    cols = 2 * num_sources + 1
    fig = Figure(figsize=(1.6 * cols, 1.7 * n), layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for row in range(n):
        for s in range(num_sources):
            label = int(y[:n][row]) if s == 0 else None
            _show(axes[row, s], _image(shown.sources[s][row]), f"source {s + 1}" + _label_text(label, class_names))
            mask = shown.masks[row, s]
            _show(axes[row, num_sources + s], mask.detach().float().cpu().numpy(),
                  f"mask {s + 1}: lam {float(shown.weights[row, s]):.2f}, mean {float(mask.mean()):.2f}",
                  cmap="gray", vmin=0, vmax=1)
        _show(axes[row, -1], _image(shown.mixed[row]), "mixed")
    fig.suptitle(f"{getattr(method, 'name', type(method).__name__)}: sources, masks, mixed samples")
    return fig


def _label_text(label, class_names) -> str:
    if label is None:
        return ""
    return f" ({class_names[label]})" if class_names is not None else f" (class {label})"


def _show(ax, image, title: str, **kwargs) -> None:
    ax.imshow(image, **kwargs)
    ax.set_title(title, fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
