"""Propositions 1 and 2 of Decoupled Mixup (NeurIPS 2023, appendix A), checked two independent ways.

Symbolically with sympy (the gradient identities hold exactly) and numerically with
autograd on random float64 logits against the closed forms the losses here use.
The functions return the differences that must vanish; ``mixrepro.study`` turns them
into checks with a verdict.
"""
from __future__ import annotations

from ..errors import InvalidParameterError


def symbolic_identities(num_classes: int = 4) -> dict[str, list[tuple[str, list]]]:
    """Propositions 1 and 2 of Decoupled Mixup in sympy, for classes a = 0, b = 1 of ``num_classes``.

    Returns {'prop1': [...], 'prop2': [...]}: each item is (statement, [lhs - rhs, ...]), the
    differences that must simplify to exactly 0 for the statement to hold.
    """
    import sympy as sp

    if not (isinstance(num_classes, int) and num_classes >= 3):
        raise InvalidParameterError("num_classes", num_classes, "an integer >= 3 (two mixed classes and another)")
    z = sp.symbols(f"z0:{num_classes}", real=True)
    lam = sp.Symbol("lambda", positive=True)
    a, b, classes = 0, 1, range(num_classes)
    e = [sp.exp(zi) for zi in z]
    total = sum(e)
    p = [ei / total for ei in e]
    y = [lam if l == a else 1 - lam if l == b else 0 for l in classes]
    mce = -sum(y[l] * sp.log(p[l]) for l in classes)
    prop1 = [("dL_MCE/dz_l = p_l - y_l for every class l",
                            [sp.diff(mce, z[l]) - (p[l] - y[l]) for l in classes])]

    def decoupled(i, j):  # -log of the softmax of class i over every class but j
        return -sp.log(e[i] / (total - e[j]))

    def q_without(j, l):
        return 0 if l == j else e[l] / (total - e[j])

    l_a, l_b = decoupled(a, b), decoupled(b, a)
    delta = [[1 if l == i else 0 for l in classes] for i in classes]
    prop2 = [
        ("decoupled softmax e^{z_a} / sum_{k != b} e^{z_k} = p_a / (1 - p_b) (and a<->b)",
                       [e[a] / (total - e[b]) - p[a] / (1 - p[b]), e[b] / (total - e[a]) - p[b] / (1 - p[a])]),
        ("dl_a/dz_l = q^(-b)_l - [l = a] (q^(-b): softmax without class b)",
                       [sp.diff(l_a, z[l]) - (q_without(b, l) - delta[a][l]) for l in classes]),
        ("dl_a/dz_b = 0: raising the partner's logit never raises l_a (mutual boosting)",
                       [sp.diff(l_a, z[b]), sp.diff(l_b, z[a])]),
        ("the decoupled part's gradient does not depend on lambda (no lambda constraint)",
                       [sp.diff(sp.diff(l_a + l_b, z[l]), lam) for l in classes]),
    ]
    return {"prop1": prop1, "prop2": prop2}


def random_mixed_logits(batch: int = 64, num_classes: int = 10, seed: int = 0):
    """float64 logits [B, C] and a two-source MixTarget with random pairs and per-sample lambdas."""
    import torch

    from ..mixers.base import MixTarget

    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, num_classes, generator=g, dtype=torch.float64)
    y = torch.randint(num_classes, (batch,), generator=g)
    partner = y[torch.randperm(batch, generator=g)]
    lam = torch.rand(batch, generator=g, dtype=torch.float64)
    return logits, MixTarget(torch.stack([y, partner], 1), torch.stack([lam, 1 - lam], 1))


def autograd_differences(batch: int = 64, num_classes: int = 10, seed: int = 0) -> dict[str, list[tuple[str, float]]]:
    """Propositions 1 and 2 against autograd on random float64 logits: (statement, max |difference|) each."""
    import torch

    from . import (decoupled_log_odds_form, decoupled_logit_gradient, decoupled_terms, dm_ce,
                         dm_ce_logit_gradient, mce_logit_gradient, soft_ce)
    from ..mixers.base import MixTarget

    logits, target = random_mixed_logits(batch, num_classes, seed)
    two_class = target.labels[:, 0] != target.labels[:, 1]

    def autograd(loss_fn):  # per-sample gradient of a batch-mean loss: B * d(mean)/dz
        z = logits.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(z), z)
        return batch * grad

    def max_diff(u, v):
        return float((u - v).abs().max())

    other_lam = torch.rand(batch, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    relabelled = MixTarget(target.labels, torch.stack([other_lam, 1 - other_lam], 1))
    l_a_of = lambda z: decoupled_terms(z, target)[two_class, 0].sum()  # noqa: E731
    z = logits.clone().requires_grad_(True)
    (grad_l_a,) = torch.autograd.grad(l_a_of(z), z)
    partner_grad = grad_l_a[two_class].gather(1, target.labels[two_class, 1:2])
    prop1 = [("autograd of MCE = p - y (mce_logit_gradient)",
                            max_diff(autograd(lambda z: soft_ce(z, target)), mce_logit_gradient(logits, target)))]
    prop2 = [
        ("decoupled softmax terms = -log(p_a / (1 - p_b)) form (two-class rows)",
                       max_diff(decoupled_terms(logits, target)[two_class],
                                decoupled_log_odds_form(logits, target)[two_class])),
        ("autograd of DM(CE), eta = 1 = dm_ce_logit_gradient",
                       max_diff(autograd(lambda z: dm_ce(z, target, eta=1.0)),
                                dm_ce_logit_gradient(logits, target, eta=1.0))),
        ("autograd dl_a/dz_b = 0 (two-class rows)", float(partner_grad.abs().max())),
        ("decoupled gradient unchanged when every lambda is redrawn",
                       max_diff(decoupled_logit_gradient(logits, target)[two_class],
                                decoupled_logit_gradient(logits, relabelled)[two_class])),
    ]
    return {"prop1": prop1, "prop2": prop2}


def lambda_sensitivity(batch: int = 64, num_classes: int = 10, seed: int = 0) -> dict[str, float]:
    """How far the MCE and the decoupled gradients move when lambda is redrawn (the contrast of Prop. 2)."""
    import torch

    from . import decoupled_logit_gradient, mce_logit_gradient
    from ..mixers.base import MixTarget

    logits, target = random_mixed_logits(batch, num_classes, seed)
    two_class = target.labels[:, 0] != target.labels[:, 1]
    other_lam = torch.rand(batch, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    relabelled = MixTarget(target.labels, torch.stack([other_lam, 1 - other_lam], 1))
    return {
        "mce": float((mce_logit_gradient(logits, target) - mce_logit_gradient(logits, relabelled))[two_class]
                     .abs().max()),
        "decoupled": float((decoupled_logit_gradient(logits, target) - decoupled_logit_gradient(logits, relabelled))
                           [two_class].abs().max()),
    }
