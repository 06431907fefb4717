"""What the book build does to the executed notebooks' copies, and the CSV files it offers.

The committed notebooks stay as papermill wrote them (nbval compares them); only the copies
staged for the book change: code is hidden behind a toggle (a reader sees the prose, tables and
figures first), papermill's injected-parameters cell is removed, every glued figure gets alt
text (its caption's first sentence, for screen readers and broken images), and each page ends
with links to the data behind it as CSV (its verdicts, and every committed run of the study).
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .io import atomic_write_text

DOWNLOADS = "downloads"  # folder of the staged book that holds the CSV files
RUN_COLUMNS = ["dataset", "method", "method_params", "key", "seed", "epochs", "train_subset", "test_subset", "width",
               "ema_schedule", "online_top1", "ema_top1", "wall_hours", "device", "commit", "dirty"]
VERDICT_COLUMNS = ["claim_id", "kind", "claim", "source", "budget", "verdict", "paper_value", "ours", "reason",
                   "runs", "run_hours"]


def reader_tags(cell: dict) -> list[str]:
    """The cell's tags for the book: injected parameters removed, other code behind a toggle."""
    tags = list(cell.get("metadata", {}).get("tags", []))
    if "injected-parameters" in tags:
        return tags + ["remove-cell"]
    # Every code cell behind a toggle, those whose output is removed (the verdict cells) too; only
    # cells already hidden or removed whole are left as they are.
    if cell.get("cell_type") == "code" and not any(t in ("remove-input", "remove-cell") or t.startswith("hide-")
                                                   for t in tags):
        return tags + ["hide-input"]
    return tags


FIGURE_DIRECTIVE = re.compile(r"(```\{glue:figure\}[^\n]*\n)((?::[^\n]*\n)*)\n?(.*?)```", re.S)
ROLE = re.compile(r"\{([\w:.-]+)\}`([^`<]*?)(?:\s*<[^>]*>)?`")  # {glue:text}`x`, {ref}`text <target>`


def alt_text(caption: str) -> str:
    """A caption's first sentence as plain text: a glued value read as N (staging cannot know it), other
    roles reduced to their text, link targets, emphasis and quotes dropped."""
    plain = ROLE.sub(lambda m: "N" if m.group(1).startswith("glue") else m.group(2), caption)
    plain = re.sub(r"\]\([^)]*\)", "", " ".join(plain.split()))  # [text](target) -> [text
    plain = re.sub(r"[*`\[\]\"]", "", plain)
    return re.split(r"(?<=[.:;])\s", plain, maxsplit=1)[0].rstrip(".:;") or "figure"


def with_alt_text(markdown: str) -> str:
    """``markdown`` with an ``:alt:`` option on every glue:figure directive that has none."""
    def add(match):
        head, options, caption = match.groups()
        if ":alt:" in options:
            return match.group(0)
        return f"{head}{options}:alt: {alt_text(caption)}\n\n{caption}```"

    return FIGURE_DIRECTIVE.sub(add, markdown)


def download_cell(page: str) -> dict:
    text = (f"**Data behind this page** (CSV): {{download}}`this page's verdicts <../{DOWNLOADS}/{page}_verdicts.csv>`,"
            f" {{download}}`every committed run of the study <../{DOWNLOADS}/runs.csv>`.")
    return {"cell_type": "markdown", "metadata": {"tags": []}, "source": text, "id": "mixrepro-downloads"}


def stage_notebook(source: Path, target: Path, verdicts: list[dict]) -> None:
    """Copy ``source`` to ``target`` with reader tags and a download cell; write its verdicts' CSV."""
    nb = json.loads(source.read_text())
    for cell in nb["cells"]:
        cell.setdefault("metadata", {})["tags"] = reader_tags(cell)
        if cell.get("cell_type") == "markdown":
            cell["source"] = with_alt_text("".join(cell.get("source", "")))
    nb["cells"].append(download_cell(source.stem))
    atomic_write_text(target, json.dumps(nb, indent=1, ensure_ascii=False))
    rows = [{k: v.get(k, "") for k in VERDICT_COLUMNS} for v in verdicts]
    atomic_write_text(target.parent.parent / DOWNLOADS / f"{source.stem}_verdicts.csv", to_csv(VERDICT_COLUMNS, rows))


def to_csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run_row(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    env_file = run_dir / "environment.json"
    env = json.loads(env_file.read_text()) if env_file.exists() else {}
    git = env.get("git") or {}
    return {"dataset": config["dataset"], "method": config["method"],
            "method_params": json.dumps(config.get("method_params", {}), sort_keys=True), "key": run_dir.name,
            "seed": config["seed"], "epochs": config["epochs"], "train_subset": config.get("train_subset") or "all",
            "test_subset": config.get("test_subset") or "all", "width": config["width"],
            "ema_schedule": config.get("ema_schedule", "paper"),
            "online_top1": summary["online"]["median_last10"], "ema_top1": summary["ema"]["median_last10"],
            "wall_hours": round(float(summary.get("wall_time_s", 0.0)) / 3600, 3),
            "device": env.get("device_name", ""), "commit": (git.get("commit") or "")[:10],
            "dirty": git.get("dirty", "")}


def committed_runs(results_root) -> list[dict]:
    """One row per stored run (sorted by dataset, method, seed, epochs)."""
    rows = [run_row(s.parent) for s in Path(results_root).glob("*/*/*/summary.json")
            if not s.parent.name.startswith(".")]
    return sorted(rows, key=lambda r: (r["dataset"], r["method"], r["method_params"], r["epochs"], r["seed"]))


def write_runs_csv(results_root, book_source: Path) -> None:
    atomic_write_text(book_source / DOWNLOADS / "runs.csv", to_csv(RUN_COLUMNS, committed_runs(results_root)))
