"""A change in what a method computes must come with a new ``code_version`` (methods/base.py).

Stored runs record the code version that trained them, and a run of another version is stale
and never reused (``mixrepro runs --stale``). This test keeps that promise honest: it trains
every registered method for three steps on a tiny network and compares the losses with the
fingerprints in ``tests/method_fingerprints.json``. When the numbers move while the class's
``code_version`` stays the same, it fails; bump the version, then regenerate the file with
``python tests/test_method_fingerprints.py``. (fp32, one thread, tolerance 1e-4 relative, so the
check does not depend on the machine's last bits.)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learned_helpers import make_method, train_steps  # noqa: E402

from mixrepro.methods import METHODS  # noqa: E402

FINGERPRINTS = Path(__file__).resolve().parent / "method_fingerprints.json"


def fingerprint(name: str) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        method = make_method(METHODS.get(name))
        losses = [float(out.loss.detach()) for out in train_steps(method, steps=3)]
    finally:
        torch.set_num_threads(threads)
    return {"code_version": METHODS.get(name).code_version, "losses": losses}


@pytest.mark.parametrize("name", METHODS.names())
def test_changed_numbers_come_with_a_new_code_version(name):
    stored = json.loads(FINGERPRINTS.read_text()).get(name)
    assert stored is not None, f"no fingerprint for {name}: run python tests/test_method_fingerprints.py"
    now = fingerprint(name)
    if now["code_version"] != stored["code_version"]:
        pytest.fail(f"{name} is at code version {now['code_version']}, its fingerprint at "
                    f"{stored['code_version']}: regenerate with python tests/test_method_fingerprints.py")
    assert now["losses"] == pytest.approx(stored["losses"], rel=1e-4), (
        f"{name}'s numbers changed at code version {now['code_version']}: bump {name}'s code_version "
        "(its stored runs become stale), then regenerate the fingerprints")


def test_the_check_fails_when_a_method_changes_silently(monkeypatch):
    stored = json.loads(FINGERPRINTS.read_text())["mixup"]
    monkeypatch.setitem(METHODS.get("mixup").default_params, "alpha", 0.3)  # a silent change of behaviour
    assert fingerprint("mixup")["losses"] != pytest.approx(stored["losses"], rel=1e-4)


if __name__ == "__main__":
    from mixrepro.io import atomic_write_json

    atomic_write_json(FINGERPRINTS, {name: fingerprint(name) for name in METHODS.names()})
    print(f"wrote {FINGERPRINTS}")
