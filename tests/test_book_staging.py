"""The book's staged notebook copies (hidden code, no injected cell, CSV links) and its provenance page."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mixrepro import book_build, book_staging

STORE = Path(__file__).resolve().parent.parent / "notebooks" / "results"


def test_staged_copy_hides_code_drops_injected_parameters_and_links_its_csv(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# Page"},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "budget = 'smoke'", "outputs": []},
             {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "budget = 'cpu'",
              "outputs": []},
             {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "source": "x = 1", "outputs": []},
             {"cell_type": "code", "metadata": {}, "source": "x", "outputs": []}]
    source = tmp_path / "page.ipynb"
    source.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (tmp_path / "book" / "notebooks").mkdir(parents=True)
    target = tmp_path / "book" / "notebooks" / "page.ipynb"
    book_staging.stage_notebook(source, target, [{"claim_id": "A", "verdict": "reproduced", "claim": "c"}])
    staged = json.loads(target.read_text())["cells"]
    tags = [c["metadata"]["tags"] for c in staged]
    assert tags[1] == ["parameters", "hide-input"] and "remove-cell" in tags[2]
    assert tags[3] == ["remove-output", "hide-input"] and tags[4] == ["hide-input"] and tags[0] == []
    assert "page_verdicts.csv" in staged[-1]["source"] and "runs.csv" in staged[-1]["source"]
    rows = list(csv.DictReader((tmp_path / "book" / "downloads" / "page_verdicts.csv").open()))
    assert rows == [{**{k: "" for k in book_staging.VERDICT_COLUMNS}, "claim_id": "A", "verdict": "reproduced",
                     "claim": "c"}]
    assert json.loads(source.read_text())["cells"] == cells  # the committed notebook is untouched


def test_runs_csv_and_environment_page_list_every_committed_run_and_flag_uncommitted_code(tmp_path):
    runs = book_staging.committed_runs(STORE)
    assert len(runs) == len(list(STORE.glob("*/*/*/summary.json")))
    book_staging.write_runs_csv(STORE, tmp_path)
    assert len(list(csv.DictReader((tmp_path / "downloads" / "runs.csv").open()))) == len(runs)
    page = book_build.environment_markdown(STORE)
    assert "| dataset | method | epochs |" in page and "runs.csv" in page
    dirty = [r["key"] for r in runs if r["dirty"] is True]
    for key in dirty:
        assert key in page  # named in the provenance column
    assert page.count("committed code") >= 1


def test_runner_reruns_each_notebook_with_the_parameters_it_was_last_executed_with():
    from mixrepro.notebook_runner import COMMITTED, notebook_parameters

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    pilot, smoke = notebooks / "protocol_pilot.ipynb", notebooks / "dm_propositions.ipynb"
    assert notebook_parameters(pilot, COMMITTED, False) == {"budget": "cpu", "train": False}
    assert notebook_parameters(smoke, COMMITTED, False) == {"budget": "smoke"}
    assert notebook_parameters(smoke, "cpu", True) == {"budget": "cpu", "train": False}
    fresh = notebook_parameters(pilot, "smoke", False, "some/dir")
    assert fresh == {"budget": "smoke", "results_dir": str(Path("some/dir").resolve())}
    assert notebook_parameters(smoke, "smoke", False, "some/dir") == {"budget": "smoke"}  # it stores no runs


def test_runner_selects_the_notebooks_last_executed_at_a_budget():
    from mixrepro.errors import UnknownNameError
    from mixrepro.notebook_runner import executed_at, notebook_paths

    paths = notebook_paths()
    cpu, smoke = executed_at(paths, "cpu"), executed_at(paths, "smoke")
    names = {p.stem for p in cpu}
    assert names >= {"protocol_pilot", "study_overview"} and "dm_propositions" not in names
    assert sorted(cpu + smoke) == paths  # the committed pages are executed at one of these two
    with pytest.raises(UnknownNameError):
        executed_at(paths, "cpuu")


def test_glued_figures_get_alt_text_from_their_caption():
    from mixrepro.book_staging import with_alt_text

    md = ("Intro\n\n```{glue:figure} curves\n:name: fig-curves\n\nTop-1 of the {glue:text}`n`-epoch **Mixup** run: "
          "online solid.\n```\n\n```{glue:figure} other\n:alt: kept\n\nCaption.\n```\n")
    out = with_alt_text(md)
    assert ":name: fig-curves\n:alt: Top-1 of the N-epoch Mixup run\n\nTop-1 of the" in out
    assert out.count(":alt:") == 2 and ":alt: kept" in out and with_alt_text(out) == out


def test_the_budgets_table_is_read_from_the_config_and_included_by_both_pages():
    from mixrepro.book_build import BOOK_DIR, budgets_markdown
    from mixrepro.config import BUDGETS, config_for_budget

    table = budgets_markdown()
    rows = [line for line in table.splitlines()[2:]]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == ["smoke", "cpu-short", "cpu", "gpu", "paper"]
    cpu = next(row for row in rows if row.startswith("| `cpu` |"))
    cells = [c.strip() for c in cpu.strip("|").split("|")]
    config = config_for_budget("cpu", method="mixup", dataset="cifar10")
    assert cells[2] == "0.25 (16-32-64-128 channels)" and cells[3] == f"{config.train_subset:,}"
    assert cells[4] == "all" and cells[5] == str(config.epochs) and cells[6] == config.ema_schedule
    assert cells[8] == str(len(BUDGETS.get("cpu").seeds))
    assert "| fp32 |" in next(row for row in rows if row.startswith("| `smoke` |"))
    for page in ("deviations.md", "how_to_rerun.md"):
        assert "```{include} _includes/budgets.md" in (BOOK_DIR / page).read_text()
