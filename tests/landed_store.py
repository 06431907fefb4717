"""A scratch results store in which every planned run has 'landed', for tests of the pages' code paths
that only run once the sweeps are through (e.g. a three-seed method paired with a one-seed ablation arm).

Each missing run is a placeholder: a copy of a committed, fully evaluated run of the same method (of
AutoMix where the method has none yet), with the planned config, as many epoch rows as the config trains
and the installed method code version. Placeholders exist only under a test's temporary folder; their
numbers mean nothing and are never shown.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from mixrepro.io import atomic_write_json
from mixrepro.results import ResultsStore
from mixrepro.runs import current_code_version
from mixrepro.study.collect import has_evaluations

FALLBACK_DONOR = "automix"  # the learned method with the most complete evaluated run


def donors_by_method(records, evaluations) -> dict:
    """The longest fully evaluated run of each method among ``records``."""
    donors = {}
    for record in records:
        if not has_evaluations(record, evaluations):
            continue
        best = donors.get(record.config.method)
        if best is None or record.config.epochs > best.config.epochs:
            donors[record.config.method] = record
    return donors


def epoch_rows(donor, epochs: int) -> str:
    """The donor's epochs.csv cycled or cut to ``epochs`` rows, renumbered 1..epochs."""
    header, *rows = (donor.run_dir / "epochs.csv").read_text().splitlines()
    column = header.split(",").index("epoch")
    out = []
    for epoch in range(1, epochs + 1):
        cells = rows[(epoch - 1) % len(rows)].split(",")
        cells[column] = str(epoch)
        out.append(",".join(cells))
    return "\n".join([header, *out]) + "\n"


def write_placeholder(store: ResultsStore, config, donor) -> None:
    folder = store.run_dir(config)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atomic_write_json(folder / "config.json", config.to_dict())
    (folder / "epochs.csv").write_text(epoch_rows(donor, config.epochs))
    atomic_write_json(folder / "summary.json", {**donor.summary, "epochs": config.epochs})
    atomic_write_json(folder / "environment.json",
                      {**donor.environment, "method_code_version": current_code_version(config.method)})
    for name in ("evaluations.json", "predictions.json"):
        shutil.copy(donor.run_dir / name, folder / name)


def landed_store(source_root: Path, target_root: Path, plans) -> int:
    """Copy the committed store to ``target_root`` and add a placeholder for every run of ``plans`` that is
    not stored there with all of its plan's evaluations; returns how many placeholders were written."""
    shutil.copytree(source_root, target_root, ignore=shutil.ignore_patterns("parked"))
    store, written = ResultsStore(target_root), 0
    committed = ResultsStore(source_root).runs()  # read once for every plan
    for plan in plans:
        dataset = plan.configs[0].dataset
        donors = donors_by_method([r for r in committed if r.config.dataset == dataset], plan.all_evaluations())
        for config in plan.configs:
            stored = store.load(config)
            if not has_evaluations(stored, plan.evaluations_for(config)):
                write_placeholder(store, config, donors.get(config.method) or donors[FALLBACK_DONOR])
                written += 1
    return written
