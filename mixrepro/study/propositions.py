"""Decoupled Mixup's Propositions 1 and 2 as checks (the identities live beside the losses)."""
from __future__ import annotations

from ..losses.dm_propositions import autograd_differences, symbolic_identities
from .verdicts import Check, check_identity, check_symbolic


def dm_symbolic_checks(num_classes: int = 4) -> dict[str, list[Check]]:
    """{'prop1': [...], 'prop2': [...]}: each identity passes when sympy simplifies it to exactly 0."""
    return {prop: [check_symbolic(statement, differences) for statement, differences in items]
            for prop, items in symbolic_identities(num_classes).items()}


def dm_autograd_checks(batch: int = 64, num_classes: int = 10, seed: int = 0, tolerance: float = 1e-10
                       ) -> dict[str, list[Check]]:
    """{'prop1': [...], 'prop2': [...]}: autograd against the closed forms, within ``tolerance``."""
    return {prop: [check_identity(statement, difference, tolerance) for statement, difference in items]
            for prop, items in autograd_differences(batch, num_classes, seed).items()}


def proof_summary(symbolic: list[Check], numeric: list[Check]) -> str:
    """The ledger's 'ours' cell of a proposition: how many symbolic and autograd checks hold, e.g.
    '4 of 4 symbolic identities exact (sympy); 1 of 1 autograd checks within tolerance'."""
    def held(checks):
        return sum(c.outcome == "supports" for c in checks)

    identities = "identity" if len(symbolic) == 1 else "identities"
    checks = "check" if len(numeric) == 1 else "checks"
    return (f"{held(symbolic)} of {len(symbolic)} symbolic {identities} exact (sympy); "
            f"{held(numeric)} of {len(numeric)} autograd {checks} within tolerance")
