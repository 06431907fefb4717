"""The papers' numbers, transcribed in ``mixrepro/paper_numbers/<paper>_<table>.json`` with their table references."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..config import RunConfig
from ..errors import InvalidParameterError
from .display import fmt, markdown_table
from .facts import method_label

PAPER_NUMBERS_DIR = Path(__file__).resolve().parent.parent / "paper_numbers"


@dataclass(frozen=True)
class PaperTable:
    """One transcribed table: ``rows[method][column]`` with the table reference and notes."""

    name: str
    paper: str
    paper_key: str
    table: str
    caption: str
    columns: dict
    rows: dict
    method_labels: dict
    notes: tuple[str, ...]
    higher_is_better: object = True
    printed_gain: dict = field(default_factory=dict)
    digits: int = 2  # decimals the paper prints (its own precision: 15.3, not 15.30)

    def value(self, method: str, column: str) -> float | None:
        return self.rows.get(method, {}).get(column)

    def label(self, method: str) -> str:
        return self.method_labels.get(method) or method_label(method)

    def reference(self) -> str:
        return f"{self.paper}, {self.table}"


def load_paper_table(name: str) -> PaperTable:
    """``mixrepro/paper_numbers/<name>.json`` as a :class:`PaperTable`."""
    path = PAPER_NUMBERS_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in PAPER_NUMBERS_DIR.glob("*.json"))
        raise InvalidParameterError("paper table", name, f"one of {known}")
    d = json.loads(path.read_text())
    return PaperTable(name=name, paper=d["paper"], paper_key=d["paper_key"], table=d["table"],
                      caption=d["caption"], columns=d["columns"], rows=d["rows"],
                      method_labels=d.get("method_labels", {}), notes=tuple(d.get("notes", ())),
                      higher_is_better=d.get("higher_is_better", True), printed_gain=d.get("printed_gain", {}),
                      digits=d.get("digits", 2))


def paper_table_markdown(table: PaperTable, columns: Sequence[str] | None = None, methods=None) -> str:
    """The paper's table as printed (selected columns), with its reference and transcription notes."""
    columns = list(columns or table.columns)
    methods = list(methods or table.rows)
    rows = [[table.label(m)] + [fmt(table.value(m, c), table.digits) for c in columns] for m in methods]
    notes = "\n".join(f"- {n}" for n in table.notes)
    return (f"**{table.reference()}**: {table.caption}\n\n"
            + markdown_table(["method"] + [table.columns[c]["label"] for c in columns], rows)
            + (f"\n\nTranscription notes:\n\n{notes}" if notes else ""))


def nearest_column(table: PaperTable, *, dataset: str, model: str, epochs: int) -> str:
    """The paper column for ``dataset`` (family: 'cifar10-jpeg' reads as 'cifar10') and ``model``
    whose epochs are closest to ours."""
    family = dataset.split("-jpeg")[0]
    candidates = [c for c, spec in table.columns.items() if spec["dataset"] == family and spec["model"] == model]
    if not candidates:
        raise InvalidParameterError("model/dataset", f"{model} on {dataset}",
                                    f"one of the {table.table} columns {sorted(table.columns)}")
    return min(candidates, key=lambda c: (abs(table.columns[c]["epochs"] - epochs), table.columns[c]["epochs"]))


def comparable_to_paper(config: RunConfig, column: dict) -> bool:
    """True when our run follows the paper column's protocol (data copy aside): model, epochs, full size."""
    return (config.width == 1.0 and config.train_subset is None and config.test_subset is None
            and config.epochs == column.get("epochs") and config.model == column.get("model"))
