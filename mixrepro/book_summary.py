"""The book's reproducibility summary: what held, what did not, what we cannot tell, at what cost.

Generated from the verdicts the executed notebooks recorded (``study.record_verdicts``) and
the committed runs, in the style of a reproducibility report: scope first, then the paper's
claims by outcome in one headline table (claim | verdict | paper | ours | budget | compute),
our own derivations and audit findings apart, the untested claims grouped by why, and the
compute the committed runs used. The intro page includes it (``book/intro.md``).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from .study.display import markdown_table
from .study.verdicts import CLAIM_KINDS, VERDICTS, read_verdicts, verdict_word

# Why a claim is untested, recognised from the reasons our code writes (study.collect, study.verdicts and the
# pages' own texts), with what would test it. The first cause whose phrase a reason contains wins: a claim
# that needs a part the study does not build waits for it even where its data is missing too.
IMAGES, RUNS, NOT_BUILT, DATA, PROTOCOL = ("figures of images, nothing to measure", "runs still to train",
                                           "a part this study does not build", "a data set not on this machine",
                                           "absolute numbers at the paper's protocol")
UNTESTED_CAUSES = (
    (IMAGES, ("no measurable statement", "a judgement of images")),
    (RUNS, ("not run (or not evaluated) yet", "only shows that the pipeline runs", "not run at budget",
            "needs at least")),
    (NOT_BUILT, ("not implemented in this study", "does not build", "has no implementation", "has no option",
                 "no momentum pipeline", "instance-level", "keeps no", "stores no")),
    (DATA, ("is not available", "not on this machine", "not among the datasets", "not here",
            "trained on ImageNet", "`mixrepro datasets`")),
    (PROTOCOL, ("absolute numbers need the paper's protocol",)),
)
OTHER_CAUSE = "other (see the ledger)"
CAUSE_REMEDIES = {
    IMAGES: "nothing here: each page shows what a measurable version would need",
    RUNS: "the study's sweeps at the cpu budget (`mixrepro sweep study`, `mixrepro sweep pages`{plan})",
    NOT_BUILT: "an implementation; the ledger row says what it would take",
    DATA: "the data (`mixrepro datasets` says where to get it) and its runs; each ledger row estimates their cost "
          "at the paper's protocol",
    PROTOCOL: "the paper's whole protocol (full-width network, all training images, its epochs): a GPU",
    OTHER_CAUSE: "see the claim's ledger row",
}
PAGES_PLAN_PATH = ("plans", "pages-cpu.json")  # under the results store: the pages plan's runs and hours


# The paper a claim comes from, by how its source begins (a source that names two papers counts for the
# first). AdAutoMix before AutoMix: the one name begins the other.
PAPERS = (("AdAutoMix", "AdAutoMix (ICLR 2024)"), ("AutoMix", "AutoMix (ECCV 2022)"),
          ("AMix", "AMix / SAMix"), ("Decoupled Mixup", "Decoupled Mixup (NeurIPS 2023)"))
OTHER_PAPER = "another source"
KIND_TITLES = {"paper": "claims of the papers", "derivation": "our derivations", "audit": "audit findings"}
# The study overview page's figure (every method's top-1, each seed a dot) heads the findings: the runs at a glance.
OVERVIEW_PAGE, OVERVIEW_FIGURE = "notebooks/study_overview.ipynb", "overview_figure"
# The study's own questions (claim ids of this prefix, no paper asks them) come right after it, with the
# overview's figure for the equal-compute question.
OWN_QUESTION_PREFIX, EQUAL_COMPUTE_FIGURE = "STUDY-", "equal_compute_figure"


def collect_verdicts(notebook_paths: Iterable) -> list[dict]:
    """Every recorded verdict, each with the notebook it came from (``page``) and its kind."""
    found = []
    for path in sorted(Path(p) for p in notebook_paths):
        for v in read_verdicts(path):
            found.append({"kind": "paper", "paper_value": "", "ours": "", "run_hours": 0.0, "runs": 0,
                          **v, "page": path.stem})
    return found


def provisional_text(verdicts: list[dict]) -> str:
    """' 3 of these verdicts are provisional: ...' (empty when none is)."""
    n = sum(bool(v.get("provisional")) for v in verdicts)
    if not n:
        return ""
    return (f" {n} of these verdicts {'is' if n == 1 else 'are'} *provisional*: judged on the seeds run so far "
            "while the study's sweep runs the rest (each one's reason names the runs still to come).")


def chance_text(verdicts: list[dict]) -> str:
    """How many of the tested verdicts' method-against-method tests came out decisive, beside how many
    would by chance alone if no method differed from any other (each two-sided test at the checks' level
    ``study.paired.ALPHA``: that share of them). Empty when no verdict rests on such a test."""
    from .study.paired import ALPHA

    tests = [c for v in verdicts if v["verdict"] != "not tested here" for c in v.get("checks", []) if c.get("test")]
    if not tests:
        return ""
    decisive = sum(c["outcome"] != "inconclusive" for c in tests)
    return (f"**Chance.** The tested verdicts rest on {len(tests)} tests of one method against another (paired "
            "or pooled t over seeds, McNemar or a bootstrap over test images, each two-sided at the "
            f"{100 * ALPHA:g} % level); {decisive} came out decisive (supports or contradicts). If no method "
            "differed from any other, "
            f"about {ALPHA * len(tests):.0f} would still have, by chance alone. The tests share runs, so this is a "
            "scale for the whole table rather than a correction: a verdict that rests on a single decisive "
            "test whose interval only just excludes zero is the likeliest to be chance.")


def untested_cause(reason: str) -> str:
    for cause, phrases in UNTESTED_CAUSES:
        if any(phrase in reason for phrase in phrases):
            return cause
    return OTHER_CAUSE


def pages_plan_text(results_root) -> str:
    """'; the pages plan: 100 runs, about 218 hours of one core, ...' from the committed plan, '' without one."""
    path = Path(results_root).joinpath(*PAGES_PLAN_PATH)
    if not path.is_file():
        return ""
    plan = json.loads(path.read_text())
    return (f"; the pages plan: {len(plan['configs'])} runs, about {plan['hours_of_one_core']:.0f} hours of one "
            "core, of which `mixrepro sweep pages --list` shows what is left")


def paper_of(source: str) -> str:
    return next((title for prefix, title in PAPERS if source.startswith(prefix)), OTHER_PAPER)


def count_row(title: str, counts: Counter) -> list[str]:
    return [title, str(sum(counts.values()))] + [str(counts.get(w, 0)) for w in VERDICTS]


def counts_table(verdicts: list[dict]) -> str:
    """Verdicts by kind, the papers' claims also by paper (which paper's claims held, at a glance)."""
    rows = []
    for kind in CLAIM_KINDS:
        of_kind = [v for v in verdicts if v["kind"] == kind]
        if of_kind:
            rows.append(count_row(KIND_TITLES[kind], Counter(v["verdict"] for v in of_kind)))
        if kind == "paper":
            for paper in [title for _, title in PAPERS] + [OTHER_PAPER]:
                counts = Counter(v["verdict"] for v in of_kind if paper_of(v["source"]) == paper)
                rows += [count_row(f"– {paper}", counts)] if counts else []
    return markdown_table(["", "claims"] + list(VERDICTS), rows)


def compute_text(v: dict) -> str:
    """'0.7 h, 1 run' (minutes below a tenth of an hour: smoke runs) of the runs a verdict rests on;
    'no training' for none (and for verdicts recorded before compute was)."""
    runs = v.get("runs") or 0
    if not runs:
        return "no training"
    hours = v["run_hours"]
    time = f"{hours:.1f} h" if hours >= 0.1 else f"{max(hours * 60, 1):.0f} min"
    return f"{time}, {runs} run{'s' if runs > 1 else ''}"


def link(v: dict) -> str:
    return f"[{v['claim_id']}](notebooks/{v['page']}.ipynb)"


def headline_table(verdicts: list[dict]) -> str:
    # The verdict right after the claim: on a narrow screen the table scrolls, and it is the column a
    # reader looks for first (book/_static/custom.css widens the claim, paper and ours columns).
    rows = [[link(v), v["claim"], verdict_word(v), v["paper_value"] or "–", v["ours"] or "–", f"`{v['budget']}`",
             compute_text(v)] for v in verdicts]
    return markdown_table(["id", "claim", "verdict", "paper", "ours", "budget", "compute"], rows)


def outcome_section(title: str, verdicts: list[dict], empty: str) -> list[str]:
    return [f"### {title}", "", headline_table(verdicts) if verdicts else empty, ""]


def untested_section(verdicts: list[dict], results_root) -> list[str]:
    causes = Counter(untested_cause(v["reason"]) for v in verdicts)
    plan = pages_plan_text(results_root)
    rows = [[cause, str(n), CAUSE_REMEDIES[cause].format(plan=plan)] for cause, n in causes.most_common()]
    return ["### Not tested here", "",
            f"{len(verdicts)} claims have no evidence yet, by cause (each row of the "
            "[claims ledger](claims_ledger.md) says what testing it would need):", "",
            markdown_table(["cause", "claims", "what would test them"], rows) if rows else "None.", ""]


def run_compute(results_root) -> tuple[float, int, Counter]:
    """(wall-clock hours, number of runs, runs per device) of every committed run."""
    hours, devices, count = 0.0, Counter(), 0
    for summary in Path(results_root).glob("*/*/*/summary.json"):
        env_file = summary.parent / "environment.json"
        env = json.loads(env_file.read_text()) if env_file.exists() else {}
        hours += float(json.loads(summary.read_text()).get("wall_time_s", 0.0)) / 3600
        devices[str(env.get("device_name") or env.get("device") or "unknown")] += 1
        count += 1
    return hours, count, devices


def overview_figure() -> list[str]:
    """The study overview's top-1 figure, pasted from its page (MyST-NB's ``glue`` directive is the one that
    reads another document), with its caption below."""
    return [f"```{{glue}} {OVERVIEW_FIGURE}", f":doc: {OVERVIEW_PAGE}", "```", "",
            "*The study's runs so far: top-1 of the scored network per method, each dot a seed, the bar their mean "
            f"(the [study overview]({OVERVIEW_PAGE}) tabulates them with ECE, FGSM and corruption accuracy). "
            "Top-1 alone ranks the methods; each claim is judged on its own page.*", ""]


def own_questions(verdicts: list[dict]) -> list[str]:
    """The study's own questions (no paper asks them), each with its verdict and numbers, and the overview's
    equal-compute figure: what a reader of a study of learned methods wants answered first."""
    own = [v for v in verdicts if v["claim_id"].startswith(OWN_QUESTION_PREFIX)]
    if not own:
        return []
    lines = [f"**The study's own question{'s' if len(own) > 1 else ''}.** " + " ".join(
        f"{v['claim']}: {verdict_word(v)} ({link(v)}; ours: {v['ours'] or '–'})." for v in own), ""]
    return lines + [f"```{{glue}} {EQUAL_COMPUTE_FIGURE}", f":doc: {OVERVIEW_PAGE}", "```", "",
                    "*Top-1 against the training compute of one run; dashed: Mixup and CutMix trained longer, to the "
                    "compute of one AutoMix or AdAutoMix run (dotted). The "
                    f"[study overview]({OVERVIEW_PAGE}) sets the same pairs' ECE, FGSM error and corruption "
                    "accuracy side by side.*", ""]


def summary_markdown(notebook_paths: Iterable, results_root) -> str:
    """The findings section the intro includes."""
    verdicts = collect_verdicts(notebook_paths)
    paper = [v for v in verdicts if v["kind"] == "paper"]
    own = [v for v in verdicts if v["kind"] != "paper"]
    tested = [v for v in paper if v["verdict"] != "not tested here"]
    hours, runs, devices = run_compute(results_root)
    device_text = ", ".join(f"{n} on {d}" for d, n in devices.most_common())
    return "\n".join([
        "## Findings at a glance", "",
        f"**Scope.** {len(paper)} claims of the four papers, {len(own)} derivations and audit findings of our own, "
        f"on {len({v['page'] for v in verdicts})} pages. {len(tested)} of the papers' claims have evidence at a "
        "training budget; the rest are listed below by why they are untested."
        + provisional_text(tested), "",
        counts_table(verdicts), "",
        *([chance, ""] if (chance := chance_text(verdicts)) else []),
        *overview_figure(),
        *own_questions(verdicts),
        *outcome_section("What held", [v for v in tested if v["verdict"] == "reproduced"],
                         "No claim of the papers has been reproduced at our budgets yet."),
        *outcome_section("What held in part", [v for v in tested if v["verdict"] == "partly"],
                         "No claim of the papers held in part."),
        *outcome_section("What did not hold", [v for v in tested if v["verdict"] == "not reproduced"],
                         "No claim has been contradicted by our runs yet."),
        *outcome_section("What we cannot tell at our budget",
                         [v for v in tested if v["verdict"] == "inconclusive at this budget"],
                         "No tested claim is inconclusive."),
        *untested_section([v for v in paper if v["verdict"] == "not tested here"], results_root),
        *outcome_section("Our own derivations and audit findings", own, "None recorded."),
        "### Compute", "",
        f"The committed runs took {hours:.1f} wall-clock hours of training and evaluation ({runs} runs: "
        f"{device_text or 'none'}); the [environment](environment.md) page lists each run.", "",
    ])
