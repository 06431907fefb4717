"""Cost estimates: iterations and GPU-hours at the paper's protocol, CPU-hours at the cpu budget."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from mixrepro import plans
from mixrepro.config import config_for_budget
from mixrepro.errors import MixreproError
from mixrepro.study import costs, verdicts
from mixrepro.study.paired import Check


def test_compute_text_counts_iterations_and_gpu_hours():
    text = costs.compute_text(24, 800, 50_000, 100, note="R-18 only")
    assert "24 runs x 800 epochs x 500 iterations (400,000 per run)" in text
    assert "about 187-293 GPU-hours" in text and text.endswith("R-18 only")
    assert "GPU-hours" not in costs.compute_text(1, 100, 1_281_167, 256, timed=False)


def smoke_run(method, seed=0, **params):
    return SimpleNamespace(config=config_for_budget("smoke", method=method, dataset="cifar10-jpeg", seed=seed,
                                                    method_params=params),
                           summary={"wall_time_s": 60.0})


@pytest.fixture
def bench(monkeypatch):
    report = {"rows": [{"method": "mixup", "seconds_per_step": 0.3}, {"method": "automix", "seconds_per_step": 0.9},
                       {"method": "vanilla", "seconds_per_step": 0.25}]}
    monkeypatch.setattr(plans, "load_bench_report", lambda: report)


def scoring_hours(vanilla_step=0.25) -> float:
    """A cpu-budget run's test scoring: both networks on the 10,000 test images in 21 of its 120 epochs."""
    return 21 * 10_000 * plans.SCORING_VANILLA_STEPS_PER_IMAGE * vanilla_step / 3600


def test_cpu_hours_price_each_setting_at_the_cpu_budget(bench):
    # cpu: 120 epochs x 100 steps (10,000 images, batch 100), 3 seeds; seeds of the priced runs are ignored
    runs = [smoke_run("mixup"), smoke_run("mixup", seed=1), smoke_run("mixup", loss="dm_ce"), smoke_run("automix")]
    want = 3 * (12_000 * (0.3 + 0.3 + 0.9) / 3600 + 3 * scoring_hours())
    assert costs.cpu_hours([r.config for r in runs]) == pytest.approx(want)
    assert costs.cpu_hours([smoke_run("samix").config]) is None  # no bench row: no invented price


def test_cpu_hours_without_a_bench_report(monkeypatch):
    def missing():
        raise MixreproError("no report")

    monkeypatch.setattr(plans, "load_bench_report", missing)
    assert costs.cpu_hours([smoke_run("mixup").config]) is None


def test_a_smoke_verdict_says_what_the_cpu_budget_would_cost(bench):
    ok = Check("s", "supports", "")
    v = verdicts.judge("X-1", "claim", "P", "smoke", [ok], runs={"mixup": [smoke_run("mixup")]})
    assert v.verdict == "not tested here"
    assert v.reason.endswith(f"(3 seeds of the 1 setting these runs cover) about {3 * (1.0 + scoring_hours()):.1f} "
                             "hours of one CPU core, by the committed bench report")
    assert "CPU core" not in verdicts.judge("X-2", "claim", "P", "smoke", [ok]).reason  # no runs, no price


def test_cpu_hours_price_an_ablation_arm_for_one_seed_and_a_cosine_floor_apart(bench):
    step = 12_000 * 0.3 / 3600 + scoring_hours()  # one cpu-budget Mixup run
    assert costs.cpu_hours([smoke_run("mixup", alpha=2.0).config]) == pytest.approx(step)  # outside the plan
    floor = config_for_budget("smoke", method="mixup", dataset="cifar10-jpeg", min_lr=0.05)  # the audit's arm
    assert costs.cpu_hours([smoke_run("mixup").config, floor]) == pytest.approx(3 * step + step)
    v = verdicts.judge("X-3", "claim", "P", "smoke", [Check("s", "supports", "")],
                       runs={"a": [smoke_run("mixup")], "b": [smoke_run("mixup", alpha=2.0)]})
    assert "(1 or 3 seeds of the 2 settings these runs cover)" in v.reason
