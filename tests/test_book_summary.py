"""The book's findings summary: counts by kind and verdict, outcome sections, untested causes, compute."""
from __future__ import annotations

import json

from mixrepro import book_summary
from mixrepro.study.verdicts import VERDICTS_OUTPUT_KEY


def notebook_with(path, verdicts):
    output = {"output_type": "display_data", "metadata": {VERDICTS_OUTPUT_KEY: True},
              "data": {"application/json": {"notebook": path.stem, "verdicts": verdicts}}}
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": [output]}]}))
    return path


def verdict(claim_id, verdict, reason="", **extra):
    return {"claim_id": claim_id, "claim": f"claim {claim_id}", "source": "P", "verdict": verdict,
            "reason": reason, "budget": "cpu", "checks": [], **extra}


def test_summary_sorts_claims_by_outcome_and_counts_kinds_apart(tmp_path):
    nb = notebook_with(tmp_path / "page.ipynb", [
        verdict("A", "reproduced", paper_value="97.1", ours="80.2 +- 0.3", run_hours=2.5, runs=3),
        verdict("B", "not reproduced"),
        verdict("C", "inconclusive at this budget"),
        verdict("D", "not tested here", "dataset 'cifar100' is not available on this machine"),
        verdict("E", "not tested here", "not run (or not evaluated) yet at this budget: x"),
        verdict("F", "reproduced", kind="audit"),
    ])
    run = tmp_path / "results" / "cifar10-jpeg" / "mixup" / "abc"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"wall_time_s": 7200}))
    (run / "environment.json").write_text(json.dumps({"device_name": "AMD EPYC"}))
    text = book_summary.summary_markdown([nb], tmp_path / "results")
    held = text.split("### What held")[1].split("###")[0]
    assert "[A](notebooks/page.ipynb)" in held and "97.1" in held and "2.5 h, 3 runs" in held
    assert "| id | claim | verdict | paper | ours |" in held  # the verdict in view before the numbers
    assert "[B]" in text.split("### What did not hold")[1].split("###")[0]
    assert "[C]" in text.split("### What we cannot tell")[1].split("###")[0]
    untested = text.split("### Not tested here")[1].split("###")[0]
    assert f"| {book_summary.DATA} | 1 |" in untested and f"| {book_summary.RUNS} | 1 |" in untested
    assert "what would test them" in untested and "pages plan" not in untested  # no plan file in this store
    assert "[F]" in text.split("### Our own derivations")[1].split("###")[0] and "[F]" not in held
    assert "5 claims of the four papers, 1 derivations and audit findings" in text
    assert "2.0 wall-clock hours" in text and "1 on AMD EPYC" in text


def test_verdicts_recorded_before_kinds_existed_count_as_paper_claims(tmp_path):
    nb = notebook_with(tmp_path / "old.ipynb", [verdict("X", "reproduced")])
    (found,) = book_summary.collect_verdicts([nb])
    assert found["kind"] == "paper" and found["runs"] == 0 and found["page"] == "old"


def test_compute_text_reads_hours_minutes_and_runs():
    from mixrepro.book_summary import compute_text

    assert compute_text({"run_hours": 2.15, "runs": 3}) == "2.1 h, 3 runs"
    assert compute_text({"run_hours": 0.02, "runs": 1}) == "1 min, 1 run"  # a smoke run
    assert compute_text({"run_hours": 0.0, "runs": 0}) == compute_text({}) == "no training"


def test_provisional_verdicts_are_marked_in_the_summary_and_the_ledger(tmp_path):
    from mixrepro.book_build import claims_ledger_markdown

    nb = notebook_with(tmp_path / "page.ipynb", [verdict("A", "partly", provisional=True), verdict("B", "reproduced")])
    (tmp_path / "results").mkdir()
    text = book_summary.summary_markdown([nb], tmp_path / "results")
    held = text.split("### What held\n")[1].split("###")[0]
    in_part = text.split("### What held in part")[1].split("###")[0]
    assert "**reproduced** |" in held and "partly" not in held  # the claims that held come first
    assert "**partly** (provisional)" in in_part and text.index("[B]") < text.index("[A]")
    assert "1 of these verdicts is *provisional*" in text
    ledger = claims_ledger_markdown([nb])
    assert "**partly** (provisional)" in ledger and "(1 of the verdicts provisional" in ledger


def test_the_findings_open_with_the_overview_figure_the_overview_page_glues(tmp_path):
    from pathlib import Path

    text = book_summary.summary_markdown([], tmp_path / "results")
    directive = f"```{{glue}} {book_summary.OVERVIEW_FIGURE}\n:doc: {book_summary.OVERVIEW_PAGE}\n```"
    assert directive in text and text.index(directive) < text.index("### What held")
    page = Path(__file__).resolve().parent.parent / book_summary.OVERVIEW_PAGE
    glued = [o["metadata"]["scrapbook"]["name"] for cell in json.loads(page.read_text())["cells"]
             for o in cell.get("outputs", []) if "scrapbook" in o.get("metadata", {})]
    assert book_summary.OVERVIEW_FIGURE in glued  # the key the directive pastes exists on that page


def test_chance_counts_the_decisive_method_tests_of_tested_verdicts_against_five_percent():
    from mixrepro.study.paired import Check, check_ranking

    def check(outcome, test=""):
        return {"statement": "s", "outcome": outcome, "detail": "", "detectable": None, "test": test}

    tests = [check("supports", "pooled t")] * 30 + [check("inconclusive", "paired t")] * 9 + [check("contradicts",
                                                                                                     "McNemar")]
    verdicts = [verdict("A", "reproduced", checks=tests + [check("supports")]),  # a paper-number check: no test
                verdict("B", "not tested here", checks=[check("supports", "paired t")] * 5)]  # untested: not counted
    text = book_summary.chance_text(verdicts)
    assert "rest on 40 tests" in text and "31 came out decisive" in text and "about 2 would" in text
    assert "each two-sided at the 5 % level" in text
    assert book_summary.chance_text([verdict("C", "reproduced", checks=[check("supports")])]) == ""
    # the tests name themselves where they are made: two seeds each, a paired t interval
    assert check_ranking("a", "b", [81.0, 80.0], [79.0, 78.5]).test == "paired t"
    assert Check("identity", "supports", "").test == ""


def test_the_chance_scale_reads_the_level_the_checks_use(monkeypatch):
    from mixrepro.study import paired

    assert paired.CONFIDENCE == 1 - paired.ALPHA
    import inspect

    assert inspect.signature(paired.check_ranking).parameters["confidence"].default == paired.CONFIDENCE
    monkeypatch.setattr(paired, "ALPHA", 0.01)
    tests = [{"statement": "s", "outcome": "inconclusive", "detail": "", "detectable": None, "test": "paired t"}] * 300
    text = book_summary.chance_text([verdict("A", "inconclusive at this budget", checks=tests)])
    assert "at the 1 % level" in text and "about 3 would" in text


def test_the_studys_own_question_follows_the_overview_figure_with_its_numbers_and_figure(tmp_path):
    from pathlib import Path

    nb = notebook_with(tmp_path / "study_overview.ipynb", [
        verdict("STUDY-equal-compute", "not reproduced", kind="audit", ours="AutoMix 80.94 vs Mixup, 326 epochs 82.08"),
        verdict("T1", "reproduced")])
    text = book_summary.summary_markdown([nb], tmp_path / "results")
    own = text.split("**The study's own question.**")[1].split("### What held")[0]
    assert "claim STUDY-equal-compute: **not reproduced**" in own and "82.08" in own
    assert f"```{{glue}} {book_summary.EQUAL_COMPUTE_FIGURE}\n:doc: {book_summary.OVERVIEW_PAGE}" in own
    assert "question" not in book_summary.summary_markdown([notebook_with(tmp_path / "p.ipynb", [
        verdict("T1", "reproduced")])], tmp_path / "results").split("### What held")[0]
    page = Path(__file__).resolve().parent.parent / book_summary.OVERVIEW_PAGE
    glued = [o["metadata"]["scrapbook"]["name"] for cell in json.loads(page.read_text())["cells"]
             for o in cell.get("outputs", []) if "scrapbook" in o.get("metadata", {})]
    assert book_summary.EQUAL_COMPUTE_FIGURE in glued  # the key the directive pastes exists on that page


def test_untested_causes_read_the_reasons_the_pages_write():
    from mixrepro.book_summary import DATA, IMAGES, NOT_BUILT, OTHER_CAUSE, PROTOCOL, RUNS, untested_cause

    assert untested_cause("no runs on CIFAR-100 are stored and the dataset is not available to the study") == DATA
    assert untested_cause("iNaturalist 2017 are not among the datasets this study can load") == DATA
    assert untested_cause("budget 'smoke' only shows that the pipeline runs; its numbers are not evidence") == RUNS
    assert untested_cause("not run (or not evaluated) yet at this budget: samix (seed 0)") == RUNS
    assert untested_cause("a figure of images with no measurable statement") == IMAGES
    assert untested_cause("absolute numbers need the paper's protocol; our runs differ in: width") == PROTOCOL
    assert untested_cause("the study trains SaliencyMix and AutoMix at one length") == OTHER_CAUSE
    # A part the study does not build outranks missing data: the data alone would not test the claim.
    both = "Swin-Tiny: model 'swin_tiny' not implemented in this study; CIFAR-100 is not available to the study"
    assert untested_cause(both) == NOT_BUILT


def test_the_untested_runs_row_states_the_pages_plan_size(tmp_path):
    plan = tmp_path / "results" / "plans" / "pages-cpu.json"
    plan.parent.mkdir(parents=True)
    plan.write_text(json.dumps({"configs": [{}, {}, {}], "hours_of_one_core": 7.6}))
    rows = book_summary.untested_section([{"reason": "not run (or not evaluated) yet: x"}], tmp_path / "results")
    assert f"| {book_summary.RUNS} | 1 |" in "\n".join(rows)
    assert "the pages plan: 3 runs, about 8 hours of one core" in "\n".join(rows)


def test_the_counts_split_the_papers_claims_by_paper():
    from mixrepro.book_summary import counts_table

    text = counts_table([verdict("A", "reproduced", source="AdAutoMix (ICLR 2024), Table 1", kind="paper"),
                         verdict("B", "partly", source="AutoMix (ECCV 2022) Fig. 8; AdAutoMix Table 6", kind="paper"),
                         verdict("C", "partly", source="AutoMix (Liu, Li et al., ECCV 2022), Table 1", kind="paper"),
                         verdict("D", "reproduced", source="Decoupled Mixup (NeurIPS 2023), A.1", kind="paper"),
                         verdict("E", "reproduced", source="our algebra", kind="derivation")])
    assert "| claims of the papers | 4 | 2 | 2 |" in text
    assert "| – AdAutoMix (ICLR 2024) | 1 | 1 | 0 |" in text  # not counted for AutoMix, whose name ends it
    assert "| – AutoMix (ECCV 2022) | 2 | 0 | 2 |" in text  # a source naming two papers counts for the first
    assert "| – Decoupled Mixup (NeurIPS 2023) | 1 | 1 |" in text and "SAMix" not in text  # no claims, no row
    assert "| our derivations | 1 | 1 |" in text and text.index("Decoupled") < text.index("our derivations")
