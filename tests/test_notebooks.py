"""The notebook machinery: transcribed paper numbers, the verdict rule, the claims ledger,
and nbval regression of the committed, executed notebooks.

The nbval tests run ``pytest --nbval`` in a subprocess on each committed notebook with an
empty data root and an empty checkpoint cache, so a notebook passes only if it
reproduces its committed outputs from the committed results store alone (nothing can
train, no final weights can be re-evaluated). One more test edits a stored result in a
copy of the store and shows that nbval then fails.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from mixrepro import book_build, study
from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.study.verdicts import VERDICTS_OUTPUT_KEY

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SANITIZE = REPO / "tests" / "nbval_sanitize.cfg"
COMMITTED = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


# ----------------------------------------------------------------------------- paper numbers


@pytest.mark.parametrize("name", ["automix_table1", "automix_table13"])
def test_printed_gain_row_matches_transcribed_cells(name):
    """The tables print 'Gain' = AutoMix minus the best other method: a check on every transcribed cell."""
    table = study.load_paper_table(name)
    inconsistent = json.loads((study.PAPER_NUMBERS_DIR / f"{name}.json").read_text()).get(
        "printed_gain_inconsistent", {})
    for column, gain in table.printed_gain.items():
        if column in inconsistent:  # the paper's own Gain disagrees with its cells; documented there
            continue
        others = [table.value(m, column) for m in table.rows if m != "automix"]
        assert table.value("automix", column) - max(others) == pytest.approx(gain, abs=0.005), column


def test_adautomix_ece_margins_match_printed_parentheses():
    table = study.load_paper_table("adautomix_table6")
    printed = {"r18": -0.2, "swin": -0.0}
    for column, margin in printed.items():
        others = [table.value(m, column) for m in table.rows if m != "adautomix"]
        assert table.value("adautomix", column) - min(others) == pytest.approx(margin, abs=0.05)


def test_dm_table_a7_tiny_mce_equals_automix_table1():
    """DM Table A7's Tiny-ImageNet MCE accuracies are AutoMix Table 1's R-18 Tiny-ImageNet column."""
    a7, t1 = study.load_paper_table("dm_tableA7"), study.load_paper_table("automix_table1")
    for method in a7.rows:
        assert a7.value(method, "tiny_acc_mce") == t1.value(method, "tiny_r18"), method


def test_every_paper_table_is_complete_and_referenced():
    for path in sorted(study.PAPER_NUMBERS_DIR.glob("*.json")):
        table = study.load_paper_table(path.stem)
        assert table.table and table.caption and table.paper_key
        for method, row in table.rows.items():
            assert set(row) <= set(table.columns), (path.stem, method)
            assert all(isinstance(v, (int, float)) for v in row.values())


def test_unknown_paper_table_lists_known_ones():
    with pytest.raises(InvalidParameterError, match="automix_table13"):
        study.load_paper_table("automix_table99")


def test_nearest_column_picks_closest_epochs():
    table = study.load_paper_table("automix_table13")
    assert study.nearest_column(table, dataset="cifar10-jpeg", model="resnet18", epochs=2) == "r18_200"
    assert study.nearest_column(table, dataset="cifar10", model="resnext50", epochs=900) == "rx50_800"
    with pytest.raises(InvalidParameterError):
        study.nearest_column(table, dataset="cifar100", model="resnet18", epochs=200)


# ----------------------------------------------------------------------------- statistics and checks


def test_seed_stats_against_statistics_module():
    values = (91.2, 90.4, 92.9)
    s = study.SeedStats(values)
    assert s.mean == pytest.approx(statistics.mean(values))
    assert s.std == pytest.approx(statistics.stdev(values))
    assert s.se == pytest.approx(statistics.stdev(values) / math.sqrt(3))
    assert study.SeedStats((5.0,)).se == 0.0
    assert "1 seed" in study.SeedStats((5.0,)).text()


def test_check_order_is_paired_over_seeds():
    high, low = study.SeedStats((80.0, 81.0, 82.0)), study.SeedStats((70.0, 71.0, 72.0))
    assert study.check_order("a", high, "b", low).outcome == "supports"
    assert study.check_order("b", low, "a", high).outcome == "contradicts"
    # the same means, but the per-seed differences disagree in sign: the seeds cannot tell
    noisy = study.SeedStats((83.0, 79.0, 81.0))
    check = study.check_order("c", noisy, "a", high)
    assert check.outcome == "inconclusive" and check.detectable > 0 and "smallest detectable" in check.detail
    # a constant gain on every seed is a clear win although the spread over seeds is large
    shifted = study.SeedStats((81.0, 82.0, 83.0))
    assert study.check_order("d", shifted, "a", high).outcome == "supports"
    # lower is better: the smaller ECE wins, and the statement says so
    lower = study.check_order("b", low, "a", high, higher_is_better=False, quantity="ECE")
    assert lower.outcome == "supports" and lower.statement == "b ECE lower than a"


def test_check_order_with_one_seed_needs_per_image_evidence():
    import numpy as np

    one, other = study.SeedStats((1.5,)), study.SeedStats((1.0,))
    assert study.check_order("x", one, "y", other).outcome == "inconclusive"
    right = np.zeros(1000, bool)
    right[:600] = True
    wrong = right.copy()
    wrong[:100] = False  # y misses 100 images x gets right: McNemar p << 0.05
    x, y = study.SeedStats((60.0,), (right,)), study.SeedStats((50.0,), (wrong,))
    assert study.check_order("x", x, "y", y).outcome == "supports"
    assert study.check_order("y", y, "x", x).outcome == "contradicts"


def test_check_close_and_not_worse_bounds():
    ours = study.SeedStats((96.0, 96.2, 96.4))
    assert study.check_close("m", ours, 96.5).outcome == "supports"  # within 0.5 points
    assert study.check_close("m", ours, 97.0).outcome == "contradicts"
    err = study.SeedStats((70.0,))
    worse = study.check_not_worse("dm", study.SeedStats((70.9,)), "mce", err, higher_is_better=False)
    assert worse.outcome == "supports"
    assert study.check_not_worse("dm", study.SeedStats((71.5,)), "mce", err, higher_is_better=False).outcome \
        == "contradicts"


def test_verdict_rule():
    ok = study.Check("s", "supports", "")
    bad = study.Check("s", "contradicts", "")
    unsure = study.Check("s", "inconclusive", "", detectable=1.2)
    assert study.decide_verdict([ok, ok]) == "reproduced"
    assert study.decide_verdict([ok, unsure]) == "partly"
    assert study.decide_verdict([bad, unsure]) == "not reproduced"
    # missing evidence is not a negative result
    assert study.decide_verdict([unsure, unsure]) == "inconclusive at this budget"
    inconclusive = study.judge("c", "claim", "src", "cpu", [unsure])
    assert inconclusive.verdict == "inconclusive at this budget" and "1.2" in inconclusive.reason
    assert study.judge("c", "claim", "src", "cpu", [ok, bad]).verdict == "partly"
    smoke = study.judge("c", "claim", "src", "smoke", [ok])
    assert smoke.verdict == "not tested here" and smoke.rule_outcome == "reproduced"
    assert study.judge("c", "claim", "src", "smoke", [ok], needs_training=False).verdict == "reproduced"
    missing = study.judge("c", "claim", "src", "gpu", [ok], untested_reason="no CIFAR-100 here")
    assert missing.verdict == "not tested here" and missing.reason == "no CIFAR-100 here"
    with pytest.raises(UnknownNameError):
        study.judge("c", "claim", "src", "tiny", [ok])


def test_claims_with_seeds_still_to_run_get_provisional_verdicts():
    from mixrepro.study.collect import PendingRuns

    ok = study.Check("s", "supports", "")
    pending = PendingRuns("not run (or not evaluated) yet at this budget: mixup (seeds 1, 2)")
    early = study.judge("c", "claim", "src", "cpu", [ok], untested_reason=pending)
    assert early.verdict == "reproduced" and early.provisional
    assert early.reason.startswith("provisional, on the seeds run so far: 1 of 1 checks support")
    assert "mixup (seeds 1, 2)" in early.reason and study.verdict_word(early) == "**reproduced** (provisional)"
    assert early.to_dict()["provisional"] is True
    # a method with no run at all, missing data, no checks, or a smoke budget: still untested
    no_method = PendingRuns(str(pending), methods_without_runs=["adautomix"])
    for reason, checks, budget in ((no_method, [ok], "cpu"), (str(pending), [ok], "cpu"),
                                   (pending, [], "cpu"), (pending, [ok], "smoke")):
        untested = study.judge("c", "claim", "src", budget, checks, untested_reason=reason)
        assert untested.verdict == "not tested here" and not untested.provisional
    # joined into a longer text, the reason is a plain str again: conservative
    assert not isinstance(pending + "; and more", PendingRuns)
    assert study.verdict_word({"verdict": "partly"}) == "**partly**"


def test_collect_runs_marks_reasons_that_only_wait_for_the_sweep(tmp_path, monkeypatch):
    import shutil

    from mixrepro.study.collect import DM_CE_PARAMS, PendingRuns

    store = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "cifar10-jpeg" / "mixup"
    shutil.copytree(store / "be221a42cad1", tmp_path / "cifar10-jpeg" / "mixup" / "be221a42cad1")
    params = study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18",
                                       methods=["mixup", "cutmix"], seeds=[0, 1], train=False,
                                       results_dir=str(tmp_path))
    runs, reason = study.collect_runs(params, method_params=DM_CE_PARAMS)
    assert list(runs) == ["mixup"] and isinstance(reason, PendingRuns)
    assert reason.methods_without_runs == ("cutmix",)
    _, absent = study.collect_runs(params, dataset="cifar100")
    assert not isinstance(absent, PendingRuns)


def test_verdicts_carry_kind_and_the_compute_of_their_runs_each_counted_once():
    from types import SimpleNamespace

    from mixrepro.config import RunConfig

    def run(seed, seconds):
        return SimpleNamespace(config=RunConfig(seed=seed), summary={"wall_time_s": seconds})

    ok = study.Check("s", "supports", "")
    a, b = run(0, 3600.0), run(1, 1800.0)
    v = study.judge("c", "claim", "src", "cpu", [ok], kind="audit", runs={"mixup": [a, b], "again": [a]},
                    paper_value="1.0", ours="2.0")
    assert (v.kind, v.runs, v.run_hours, v.paper_value, v.ours) == ("audit", 2, 1.5, "1.0", "2.0")
    assert study.judge("c", "claim", "src", "cpu", [ok]).runs == 0
    with pytest.raises(InvalidParameterError, match="kind"):
        study.judge("c", "claim", "src", "cpu", [ok], kind="opinion")


def test_dm_symbolic_checks_fail_on_a_wrong_identity():
    import sympy

    z = sympy.Symbol("z")
    assert study.check_symbolic("ok", [sympy.exp(z) * sympy.exp(-z) - 1]).outcome == "supports"
    assert study.check_symbolic("wrong", [sympy.exp(z) - 1]).outcome == "contradicts"
    assert study.check_identity("tiny", 1e-15).outcome == "supports"
    assert study.check_identity("big", 1e-3).outcome == "contradicts"


def test_dm_autograd_checks_pass():
    checks = study.dm_autograd_checks(batch=16, num_classes=6, seed=3)
    assert all(c.outcome == "supports" for group in checks.values() for c in group)
    shift = study.lambda_sensitivity(batch=16, num_classes=6, seed=3)
    assert shift["decoupled"] == 0.0 and shift["mce"] > 0.1


def test_proof_summary_counts_what_held():
    ok, bad = study.Check("a", "supports", ""), study.Check("b", "contradicts", "")
    assert study.proof_summary([ok, ok], [ok]) == ("2 of 2 symbolic identities exact (sympy); "
                                                   "1 of 1 autograd check within tolerance")
    assert study.proof_summary([ok, bad], [bad]).startswith("1 of 2 symbolic") and "0 of 1 autograd" in \
        study.proof_summary([ok, bad], [bad])


def test_confidence_gap_is_signed_and_weighted():
    diagram = {"count": [0, 2, 6], "confidence": [None, 0.4, 0.9], "accuracy": [None, 0.5, 0.7]}
    gap = study.confidence_gap({"reliability_10bins": diagram})
    assert gap == pytest.approx(100 * (2 * -0.1 + 6 * 0.2) / 8)


# ----------------------------------------------------------------------------- parameters


def test_validate_parameters_defaults_and_errors(tmp_path):
    p = study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=None,
                                   smoke_methods=["mixup", "cutmix"], table_methods=["vanilla", "comixup"])
    assert p.methods == ("mixup", "cutmix") and p.seeds == (0,) and p.train is True
    cpu = study.validate_parameters(budget="cpu", dataset="cifar10-jpeg", model="resnet18", methods=None,
                                     smoke_methods=["mixup"], table_methods=["vanilla", "comixup", "mixup"])
    assert cpu.methods == ("vanilla", "mixup") and cpu.seeds == (0, 1, 2)  # comixup is not implemented
    assert cpu.config("mixup", 1).seed == 1 and cpu.config("mixup", 1).epochs == 120
    with pytest.raises(UnknownNameError, match="known method"):
        study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=["mixpu"])
    with pytest.raises(UnknownNameError):
        study.validate_parameters(budget="huge", dataset="cifar10-jpeg", model="resnet18", methods=["mixup"])
    with pytest.raises(InvalidParameterError, match="seeds"):
        study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                   seeds=[-1])
    with pytest.raises(InvalidParameterError, match="train"):
        study.validate_parameters(budget="smoke", dataset="cifar10-jpeg", model="resnet18", methods=["mixup"],
                                   train="yes")


def test_methods_with_loss_option_are_those_whose_defaults_name_a_loss():
    from mixrepro.methods import METHODS

    chosen = study.methods_with_loss_option(METHODS.names())
    assert "mixup" in chosen and "vanilla" in chosen
    assert all("loss" in METHODS.get(m).default_params for m in chosen)
    assert study.methods_with_loss_option(["comixup"]) == []


# ----------------------------------------------------------------------------- claims ledger


def _notebook_with_verdicts(path: Path, verdicts: list[study.Verdict]) -> None:
    payload = {"notebook": path.stem, "verdicts": [v.to_dict() for v in verdicts]}
    output = {"output_type": "display_data", "data": {"application/json": payload, "text/plain": "..."},
              "metadata": {VERDICTS_OUTPUT_KEY: True}}
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [output],
                     "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_claims_ledger_collects_every_recorded_verdict(tmp_path):
    ok = study.Check("s", "supports", "")
    _notebook_with_verdicts(tmp_path / "a.ipynb", [study.judge("A-1", "first", "P1", "cpu", [ok]),
                                                   study.judge("A-2", "second", "P1", "smoke", [ok])])
    _notebook_with_verdicts(tmp_path / "b.ipynb", [study.judge("B-1", "third", "P2", "gpu", [ok],
                                                                untested_reason="no data")])
    (tmp_path / "c.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}))
    assert [v["claim_id"] for v in study.read_verdicts(tmp_path / "a.ipynb")] == ["A-1", "A-2"]
    page = book_build.claims_ledger_markdown(sorted(tmp_path.glob("*.ipynb")))
    assert ("**3 claims**: 1 reproduced, 0 partly, 0 not reproduced, 0 inconclusive at this budget, "
            "2 not tested here.") in page
    assert page.count("\n| A-") == 2 and page.count("\n| B-") == 1 and "no data" in page
    assert "## [a](notebooks/a.ipynb)" in page and "c.ipynb" not in page
    assert "| compute |" in page and page.count("| no training |") == 3  # the fake verdicts rest on no runs
    in_book_order = book_build.claims_ledger_markdown(sorted(tmp_path.glob("*.ipynb")), order=["b", "a"])
    assert in_book_order.index("## [b]") < in_book_order.index("## [a]")


def test_ledger_follows_the_books_table_of_contents():
    order = book_build.toc_order()
    assert order[:3] == ["study_overview", "protocol_pilot", "protocol_audit_cpu_runs"]
    assert set(order) == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}  # every page in the book, once
    assert len(order) == len(set(order))


def test_committed_notebooks_record_verdicts():
    """Every committed notebook is executed and has recorded at least one verdict for the ledger."""
    assert COMMITTED, "no notebooks committed"
    for name in COMMITTED:
        verdicts = study.read_verdicts(NOTEBOOKS / name)
        assert verdicts, f"{name} has no recorded verdicts (execute it with mixrepro.notebook_runner)"
        assert all(v["verdict"] in study.VERDICTS for v in verdicts)


def _code_of(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_no_page_drops_a_missing_runs_reason_with_or():
    """``a_missing or b_missing`` keeps only the first reason: the claim is then judged (or left
    untested) as if the other group of runs were complete. Pages join reasons with join_reasons."""
    import re

    dropping = re.compile(r"\b\w*(?:missing|reason)\b\s+or\s+\w*(?:missing|reason)\b")
    offenders = {name: dropping.findall(_code_of(NOTEBOOKS / name)) for name in COMMITTED}
    assert not {name: hits for name, hits in offenders.items() if hits}
    assert dropping.search("untested_reason=needs(x, missing=missing or dm_missing)")  # the pattern finds the bug


def test_join_reasons_keeps_the_runs_either_reason_waits_for():
    """The FGSM page's DM(CE) claims wait for the DM runs as well as for the MCE runs: a method with
    no DM run at all leaves the joined reason with that method, so the claim is not judged yet."""
    pending = study.collect.PendingRuns
    mce = pending("automix seed 2 not run yet", (), dataset="cifar10-jpeg",
                  not_run=(("automix seed 2", "cmd", "study"),))
    dm = pending("manifoldmix seeds 0-2 not run yet", ("manifoldmix",), dataset="cifar10-jpeg")
    joined = study.join_reasons([mce, dm])
    assert isinstance(joined, pending) and joined.methods_without_runs == ("manifoldmix",)
    assert "automix seed 2" in joined and "manifoldmix" in joined
    check = study.check_order("A", study.SeedStats((81.0, 81.2)), "B", study.SeedStats((80.0, 80.1)))
    assert study.judge("x", "claim", "src", "cpu", [check], untested_reason=joined).verdict == "not tested here"
    assert study.judge("x", "claim", "src", "cpu", [check], untested_reason=mce).provisional


# ----------------------------------------------------------------------------- nbval regression


def _nbval(notebook_dir: Path, names: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``pytest --nbval`` on ``names`` in ``notebook_dir`` with no data and no checkpoint cache.

    At two threads, where the committed pages were executed at one: a page whose numbers depend on
    the machine's thread count (a torch reduction splits its sum by threads) fails here."""
    env = {**os.environ, "MIXREPRO_DATA": str(tmp_path / "no-data"), "MIXREPRO_CACHE": str(tmp_path / "no-cache"),
           "OMP_NUM_THREADS": "2", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    env.pop("MIXREPRO_RESULTS", None)
    command = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
               str(SANITIZE), "-p", "no:cacheprovider", "-q", "--rootdir", str(notebook_dir),
               "-o", "addopts=", "-o", "testpaths=", *[str(notebook_dir / n) for n in names]]
    return subprocess.run(command, cwd=notebook_dir, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMITTED)
def test_committed_notebook_reproduces_its_outputs(name, tmp_path):
    result = _nbval(NOTEBOOKS, [name], tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_nbval_fails_when_a_stored_result_changes(tmp_path):
    """Edit one stored accuracy in a copy of the results store: nbval must report a mismatch."""
    name = "automix_table13_cifar10_epochs.ipynb"
    copy = tmp_path / "notebooks"
    copy.mkdir()
    shutil.copy2(NOTEBOOKS / name, copy / name)
    shutil.copytree(NOTEBOOKS / "results", copy / "results")
    from mixrepro.config import config_for_budget

    budget = study.read_verdicts(NOTEBOOKS / name)[0]["budget"]  # the budget the page was executed at
    key = config_for_budget(budget, method="vanilla", dataset="cifar10-jpeg", seed=0).key()
    stored = copy / "results" / "cifar10-jpeg" / "vanilla" / key / "summary.json"
    assert stored.is_file(), f"no stored {budget} vanilla run {key} to edit"
    summary = json.loads(stored.read_text())
    summary["online"]["median_last10"] += 1.0
    stored.write_text(json.dumps(summary))
    result = _nbval(copy, [name], tmp_path)
    assert result.returncode != 0
    assert "vanilla" in result.stdout and "failed" in result.stdout


# ----------------------------------------------------------------------------- the book


@pytest.mark.slow
def test_book_builds_offline_with_warnings_as_errors(tmp_path):
    """The book builds from the committed notebooks (-W), and no page loads a script or style from the network."""
    import re

    from mixrepro import book_build

    book = tmp_path / "book"
    shutil.copytree(REPO / "book", book, ignore=shutil.ignore_patterns("_build"))
    html = book_build.build(book, NOTEBOOKS, NOTEBOOKS / "results")
    pages = sorted(html.rglob("*.html"))
    assert (html / "claims_ledger.html").exists() and (html / "notebooks" / "fgsm.html").exists()
    remote = re.compile(r"<(script|link)[^>]+(src|href)=\"https?://")
    assert not [p.name for p in pages if remote.search(p.read_text())]
    assert "_static/mathjax/" in (html / "notebooks" / "dm_propositions.html").read_text()
    claims = sum(len(study.read_verdicts(NOTEBOOKS / name)) for name in COMMITTED)
    assert f"{claims} claims" in (html / "claims_ledger.html").read_text()
    figures = [m.group(1) for p in (html / "notebooks").glob("*.html")
               for m in re.finditer(r'<img alt="([^"]*)"', p.read_text())]
    assert figures and not [a for a in figures if a.endswith(".png")]  # every figure has alt text, not a file name


def test_every_reference_has_a_url_or_doi():
    import re

    entries = re.findall(r"@\w+\{(\w+),(.*?)\n\}", (REPO / "book" / "references.bib").read_text(), re.S)
    assert len(entries) >= 17
    assert not [key for key, body in entries if not re.search(r"^\s*(url|doi)\s*=", body, re.M)]


def test_runner_drops_stderr_streams_but_keeps_results(tmp_path):
    import nbformat

    from mixrepro.notebook_runner import strip_volatile_metadata

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="epoch 1: 10%|#"),
                    nbformat.v4.new_output("stream", name="stdout", text="mixup top-1 12.00")]
    nb.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    strip_volatile_metadata(path)
    outputs = nbformat.read(str(path), as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "mixup top-1 12.00")]


def test_runner_counts_the_cpu_time_of_finished_kernels():
    from mixrepro.notebook_runner import kernel_cpu_seconds

    before = kernel_cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(4_000_000))"], check=True)
    assert kernel_cpu_seconds() - before > 0.1


def one_cell_notebooks(folder, cells: dict) -> list:
    """{name: code} -> paths of notebooks of one code cell each, in the given order."""
    import nbformat

    paths = []
    for name, code in cells.items():
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell(code))
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        paths.append(folder / f"{name}.ipynb")
        nbformat.write(nb, str(paths[-1]))
    return paths


@pytest.mark.slow
def test_runner_keeps_going_past_a_failing_notebook_and_lists_it(tmp_path, capsys):
    from mixrepro.notebook_runner import kernel_environment, run_all

    paths = one_cell_notebooks(tmp_path, {"a_fails": "raise ValueError('boom')", "b_runs": "x = 1"})
    kernel_environment()
    failed = run_all({p: {} for p in paths}, timeout_s=120, keep_going=True)
    assert len(failed) == 1 and failed[0].startswith("a_fails.ipynb") and "boom" in failed[0]
    printed = capsys.readouterr().out
    assert "FAILED a_fails.ipynb" in printed and "\nb_runs.ipynb" in printed
    with pytest.raises(Exception, match="boom"):
        run_all({paths[0]: {}}, timeout_s=120, keep_going=False)


def test_paper_numbers_print_at_the_papers_own_precision():
    ece = study.paper_table_markdown(study.load_paper_table("adautomix_table6"))
    assert "| 15.3 |" in ece and "15.30" not in ece  # AdAutoMix prints ECE with one decimal
    top1 = study.paper_table_markdown(study.load_paper_table("automix_table1"))
    assert "| 95.50 |" in top1  # AutoMix prints two


@pytest.mark.slow
def test_runner_runs_notebooks_at_once_and_stops_starting_new_ones_after_a_failure(tmp_path, capsys):
    from mixrepro.notebook_runner import kernel_environment, run_all

    # each notebook records when its kernel ran: two that ran at once have overlapping intervals, whatever
    # the workers' start-up costs (a wall-clock bound failed on a loaded CI machine)
    record = "import time; t = time.time(); time.sleep(3); open('{}.ran', 'w').write(f'{{t}} {{time.time()}}')"
    paths = one_cell_notebooks(tmp_path, {
        "a_sleeps": record.format("a"), "b_sleeps": record.format("b"),
        "c_fails": "raise ValueError('boom')", "d_after": "open('d.done', 'w').close()"})
    kernel_environment()
    assert run_all({p: {} for p in paths[:2]}, timeout_s=120, keep_going=False, jobs=2) == []
    # each kernel ran in its own notebook's folder (papermill changes the process's working directory)
    (a_start, a_end), (b_start, b_end) = (
        map(float, (tmp_path / f"{name}.ran").read_text().split()) for name in "ab")
    assert "a_sleeps.ipynb" in capsys.readouterr().out
    assert a_start < b_end and b_start < a_end  # at once (in turn, one would start after the other ended)
    assert run_all({p: {} for p in paths[:2]}, timeout_s=120, keep_going=False, jobs=1) == []
    (a_start, a_end), (b_start, b_end) = (
        map(float, (tmp_path / f"{name}.ran").read_text().split()) for name in "ab")
    assert a_end <= b_start  # jobs=1: in turn, the test's own control
    with pytest.raises(Exception, match="boom"):
        run_all({p: {} for p in paths[2:]}, timeout_s=120, keep_going=False, jobs=1)
    assert not (tmp_path / "d.done").exists()  # nothing new starts after a failure


@pytest.mark.slow
def test_every_page_runs_at_budget_cpu_and_the_pages_plan_is_what_they_ask_for(tmp_path, monkeypatch):
    """Each page executed at budget cpu, loading only (runs missing: verdicts say so, nothing fails), records
    the study-dataset runs it asks for; beyond the study plan they are the committed ``pages`` sweep plan
    (a page whose arms change without ``notebook_runner --plan-pages`` fails here)."""
    from mixrepro.notebook_runner import record_pages_plan
    from mixrepro.plans import PAGES_PLAN_FILE

    monkeypatch.setenv("MIXREPRO_DATA", str(tmp_path / "no-data"))  # loading only: no page may need the data
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "no-cache"))
    content, failed = record_pages_plan(NOTEBOOKS, jobs=2, timeout_s=600)
    assert failed == []
    committed = json.loads(PAGES_PLAN_FILE.read_text())
    assert content["configs"] == committed["configs"], "rerun `python -m mixrepro.notebook_runner --plan-pages`"
    assert content == committed


@pytest.mark.slow
def test_every_page_runs_at_budget_cpu_once_every_planned_run_has_landed(tmp_path, monkeypatch):
    """The paths the sweeps reach only after many sessions (all three seeds of a method beside one-seed
    ablation arms, every arm of every page present) must not crash when the runs land. Seen before this
    test: calibration paired a three-seed CutMix with a one-value zero, and four AdAutoMix pages built no
    check for a one-seed arm against the three-seed study run and raised."""
    from landed_store import landed_store

    from mixrepro.notebook_runner import record_pages_plan
    from mixrepro.plans import PAGES_PLAN_FILE, pages_plan, study_plan

    monkeypatch.setenv("MIXREPRO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "no-cache"))
    store = tmp_path / "results"
    assert landed_store(NOTEBOOKS / "results", store, [study_plan(), pages_plan()]) > 0
    content, failed = record_pages_plan(NOTEBOOKS, str(store), jobs=2, timeout_s=600)
    assert failed == []
    assert content["configs"] == json.loads(PAGES_PLAN_FILE.read_text())["configs"]  # the same asks in every state


def test_a_page_whose_kernel_died_while_starting_is_started_once_more(tmp_path, monkeypatch):
    import mixrepro.notebook_runner as runner

    calls = []

    def flaky(path, parameters, timeout_s=None):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError(f"{runner.KERNEL_START_FAILURE} (on a loaded machine)")

    monkeypatch.setattr(runner, "run_notebook", flaky)
    assert runner.execute(tmp_path / "a.ipynb", {}, None)[1] is None and len(calls) == 2
    def broken(path, parameters, timeout_s=None):
        calls.append(path)
        raise ValueError("boom")

    monkeypatch.setattr(runner, "run_notebook", broken)
    calls.clear()
    assert runner.execute(tmp_path / "a.ipynb", {}, None)[1] == "boom" and len(calls) == 1  # a page's own error


def test_plan_pages_refuses_only_because_it_would_write_a_partial_plan(capsys):
    from mixrepro.notebook_runner import main

    with pytest.raises(SystemExit):
        main(["--plan-pages", "--only", "fgsm"])
    assert "partial plan" in capsys.readouterr().err


@pytest.mark.slow
def test_runner_executes_each_page_at_one_thread_whatever_the_machine_sets(tmp_path, monkeypatch):
    """Pages executed at the machine's thread count would carry its reduction order into their numbers."""
    from mixrepro.notebook_runner import kernel_environment, run_all

    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # as a user's shell might; restored after the test
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))
    paths = one_cell_notebooks(tmp_path, {"threads": "import torch; open('threads', 'w').write("
                                                     "str(torch.get_num_threads()))"})
    kernel_environment()
    assert run_all({paths[0]: {}}, timeout_s=120, keep_going=False) == []
    assert (tmp_path / "threads").read_text() == "1"
