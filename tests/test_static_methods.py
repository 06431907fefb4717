"""Static training methods: mixer + loss, registered in METHODS, one training step each."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.methods.base import StepContext
from mixrepro.methods.registry import METHODS, build_method, print_methods
from mixrepro.methods.static import (
    ALPHA_SETTINGS, PAPER_ALPHA, PAPER_ALPHA_SOURCE, StaticMixMethod, paper_alpha,
)
from mixrepro.mixers import build_mixer
from mixrepro.models import build_model


STATIC = ["vanilla", "mixup", "cutmix", "manifoldmix", "saliencymix", "fmix", "resizemix"]
K = 10


def tiny_model():
    return build_model("resnet18", K, width=0.125, generator=torch.Generator().manual_seed(0))


def data(seed: int = 0, b: int = 8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 32, 32, generator=g), torch.randint(0, K, (b,), generator=g)


def ctx(seed: int = 0) -> StepContext:
    return StepContext(step=0, total_steps=10, epoch=0, generator=torch.Generator().manual_seed(seed))


def own_soft_ce(logits: torch.Tensor, target) -> torch.Tensor:
    """Mixup cross-entropy written out independently: -sum_k w_k log softmax(z)[y_k], batch mean."""
    log_p = F.log_softmax(logits, dim=1)
    return -(target.weights * log_p.gather(1, target.labels)).sum(1).mean()


@pytest.mark.parametrize("name", STATIC)
def test_training_step_gives_finite_loss_with_gradients_on_the_model_only(name):
    method = build_method(name, tiny_model(), K)
    assert isinstance(method, StaticMixMethod)
    x, y = data()
    x.requires_grad_(False)
    out = method.training_step(x, y, ctx())
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert 0.0 <= out.logs["lam"] <= 1.0
    out.loss.backward()
    grads = [p.grad for p in method.model.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert all(p.grad is None and not p.requires_grad for p in method.ema.parameters())
    assert x.grad is None


@pytest.mark.parametrize("name", STATIC[1:])
def test_mce_loss_is_soft_ce_of_the_mixers_output(name):
    """Replaying the same generator through the mixer gives the method's batch and loss."""
    method = build_method(name, tiny_model(), K).eval()
    x, y = data(1)
    loss = method.training_step(x, y, ctx(5)).loss
    mixer, g = build_mixer(name, alpha=method.params["alpha"]), torch.Generator().manual_seed(5)
    if name == "manifoldmix":
        logits, target = mixer(method.model, x, y, g)
    else:
        x_mix, target = mixer(x, y, g)
        logits = method.model(x_mix)
    torch.testing.assert_close(loss, own_soft_ce(logits, target))


def test_vanilla_is_plain_cross_entropy():
    method = build_method("vanilla", tiny_model(), K).eval()
    x, y = data(2)
    out = method.training_step(x, y, ctx())
    torch.testing.assert_close(out.loss, F.cross_entropy(method.model(x), y))
    assert out.logs["lam"] == 1.0


@pytest.mark.parametrize("name", STATIC)
def test_same_seed_same_loss(name):
    losses = []
    for _ in range(2):
        method = build_method(name, tiny_model(), K)
        losses.append(method.training_step(*data(3), ctx(11)).loss)
    assert torch.equal(losses[0], losses[1])


def test_registry_and_defaults():
    assert set(STATIC) <= set(METHODS.names())
    expected_alpha = {"mixup": 1.0, "cutmix": 0.2, "manifoldmix": 2.0, "saliencymix": 0.2, "fmix": 0.2,
                      "resizemix": 1.0}
    for name in STATIC:
        cls = METHODS.get(name)
        assert cls.default_min_lr == 0.0
        assert cls.default_params["loss"] == "mce" and cls.default_params["loss_params"] == {}
        if name != "vanilla":
            assert cls.default_params["alpha"] == expected_alpha[name] == PAPER_ALPHA[(name, "cifar")]
    assert "alpha" not in METHODS.get("vanilla").default_params


def test_paper_alpha_table_from_the_automix_appendix():
    assert len(PAPER_ALPHA) == 6 * len(ALPHA_SETTINGS)
    assert paper_alpha("manifoldmix", "fine_grained") == 0.5
    assert paper_alpha("cutmix", "imagenet_r50") == 1.0 and paper_alpha("manifoldmix", "imagenet_r50") == 0.2
    assert paper_alpha("mixup", "inat_r50") == 0.2 and paper_alpha("fmix", "inat_r50") == 1.0
    assert all(paper_alpha(m, "imagenet_r18") == 0.2 for m in ("mixup", "cutmix", "resizemix"))
    assert paper_alpha("saliencymix", "fine_grained") == 0.2 and paper_alpha("resizemix", "fine_grained") == 1.0
    with pytest.raises(UnknownNameError, match="alpha setting"):
        paper_alpha("mixup", "cifar100")
    with pytest.raises(UnknownNameError, match="static method"):
        paper_alpha("automix", "cifar")


def test_losses_use_the_dm_presets_of_the_mixer_and_explicit_params_win():
    assert build_method("cutmix", tiny_model(), K, loss="dm_bce").loss_fn.params["xi"] == 0.8
    mixup_bce = build_method("mixup", tiny_model(), K, loss="dm_bce").loss_fn.params
    assert (mixup_bce["t"], mixup_bce["xi"]) == (0.5, 1.0)
    assert build_method("fmix", tiny_model(), K, loss="dm_ce").loss_fn.params["eta"] == 0.1
    eta = build_method("fmix", tiny_model(), K, loss="dm_ce", loss_params={"eta": 1.0}).loss_fn.params["eta"]
    assert eta == 1.0
    for loss in ("bce", "dm_ce", "dm_bce"):
        out = build_method("resizemix", tiny_model(), K, loss=loss).training_step(*data(), ctx())
        assert torch.isfinite(out.loss)


def test_invalid_parameters_raise_clear_errors():
    with pytest.raises(InvalidParameterError, match="alpha"):
        build_method("cutmix", tiny_model(), K, alpha=-1)
    with pytest.raises(InvalidParameterError, match="mixup parameter"):
        build_method("mixup", tiny_model(), K, decay_power=3)
    with pytest.raises(UnknownNameError, match="unknown loss"):
        build_method("mixup", tiny_model(), K, loss="focal")
    with pytest.raises(InvalidParameterError, match="loss_params"):
        build_method("mixup", tiny_model(), K, loss_params=0.1)
    with pytest.raises(InvalidParameterError, match="stage"):
        build_method("manifoldmix", tiny_model(), K, stages=[0, 5])
    with pytest.raises(UnknownNameError, match="unknown method"):
        build_method("mixupp", tiny_model(), K)


def test_params_from_a_json_config_work():
    """RunConfig stores method_params as JSON: tuples come back as lists."""
    method = build_method("resizemix", tiny_model(), K, scope=[0.2, 0.5], tau_dist="beta")
    assert method.mixer.scope == (0.2, 0.5)
    method = build_method("manifoldmix", tiny_model(), K, stages=[1])
    assert method.mixer.stages == (1,)


def test_describe_and_print_methods(capsys):
    info = METHODS.get("fmix").describe()
    assert info["defaults"]["decay_power"] == 3.0 and info["alpha_source"] == PAPER_ALPHA_SOURCE
    assert METHODS.get("vanilla").describe()["alpha_source"] is None
    print_methods()
    printed = capsys.readouterr().out
    for name in STATIC:
        assert name in printed
    assert "scope=(0.1, 0.8)" in printed


def test_validate_params_checks_values_without_a_model():
    cls = METHODS.get("fmix")
    assert cls.validate_params({**cls.default_params, "alpha": 1.0})["alpha"] == 1.0
    with pytest.raises(InvalidParameterError, match="label_lam"):
        cls.validate_params({**cls.default_params, "label_lam": "exact"})


def test_saliencymix_reference_option_reads_the_models_normalised_input():
    """saliency_input="reference-float" (the reference code's OpenCV call) gets the model's own
    normalisation from the method, trains, and puts its box somewhere else than the default."""
    model = tiny_model()
    default = build_method("saliencymix", model, K)
    reference = build_method("saliencymix", model, K, saliency_input="reference-float")
    assert reference.mixer.normalize is model.normalize
    x, y = data(b=16)
    for method in (default, reference):
        assert torch.isfinite(method.training_step(x, y, ctx(3)).loss)
    x_default, _ = default.mixer(x, y, torch.Generator().manual_seed(3))
    x_reference, _ = reference.mixer(x, y, torch.Generator().manual_seed(3))
    assert not torch.equal(x_default, x_reference)
    with pytest.raises(InvalidParameterError, match="saliency_input"):
        build_method("saliencymix", model, K, saliency_input="bytes")
