"""The pilot's decision: the stated rule, its fallback once all seeds are in, and waiting before."""
from __future__ import annotations

from mixrepro.study import pilot
from mixrepro.study.paired import Check


def comparison(setting, gaps, ps, outcome="inconclusive", hours=1.0):
    return {"setting": setting, "seeds": len(gaps), "gaps": gaps, "mcnemar_p": ps, "hours_per_run": hours,
            "check": Check("Mixup beats Vanilla", outcome, "")}


FULL_WORSE = comparison("full", [-1.9, -2.5], [2e-7, 5e-10])
SMALL_AHEAD = comparison("small", [0.9, 0.3], [0.14, 0.36])


def test_rule_takes_the_cheapest_supported_setting():
    a = comparison("a", [1.0, 1.2], [0.01, 0.01], "supports", hours=2.0)
    b = comparison("b", [0.8, 0.9], [0.02, 0.03], "supports", hours=1.0)
    assert pilot.choose_setting([a, b, FULL_WORSE]) == ("b", "rule")


def test_fallback_drops_settings_where_mixup_is_significantly_worse_at_every_seed():
    assert pilot.choose_setting([FULL_WORSE, SMALL_AHEAD]) == ("small", "fallback")
    one_seed_worse = comparison("mixed", [-0.5, 2.5], [2e-7, 0.2])  # mean gap 1.0
    assert not pilot.mixup_significantly_worse(one_seed_worse)
    assert pilot.choose_setting([FULL_WORSE, one_seed_worse, SMALL_AHEAD]) == ("mixed", "fallback")
    assert pilot.choose_setting([FULL_WORSE]) == (None, "none plausible")


def test_no_decision_while_seeds_are_missing():
    pending = {"setting": "small", "seeds": 1, "gaps": [0.9], "mcnemar_p": [0.14], "hours_per_run": 1.0,
               "check": Check("x", "inconclusive", "")}
    assert pilot.choose_setting([FULL_WORSE, pending]) == (None, "waiting")
    assert "waits" in pilot.decision_text(None, "waiting")
    assert "fallback" in pilot.decision_text("small", "fallback")


def test_gap_text_gives_each_paired_seeds_gap_and_nothing_before_pairs_exist():
    assert pilot.gap_text(FULL_WORSE) == "Mixup − Vanilla -1.90, -2.50 points, per paired seed"
    assert pilot.gap_text({"setting": "x", "seeds": 0, "runs": []}) == ""
