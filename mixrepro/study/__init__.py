"""The study layer: what the notebooks use to put the papers' numbers beside ours and judge claims.

Every notebook of the study follows one pattern (book page "How to rerun"):

1. a ``parameters`` cell of plain assignments, validated by :func:`validate_parameters`
   (``parameters.py``);
2. runs from :func:`collect_runs` (``collect.py``: ``mixrepro.runs.train_or_load`` per
   method and seed), summarised over seeds by :func:`scored_stats` /
   :func:`evaluation_stats` (``scores.py``);
3. the paper's numbers from ``mixrepro/paper_numbers/<paper>_<table>.json``
   (:func:`load_paper_table`, ``paper_tables.py``) beside ours, as tables and figures
   (``display.py``, ``figures.py``);
4. checks turned into a verdict by the stated rule (``verdicts.py``, with the paired
   statistics of ``paired.py``), recorded with :func:`record_verdicts`, from which
   ``mixrepro.book_build`` builds the claims ledger.

Notebooks import this package (``from mixrepro import study``) and call its names.
"""
from .collect import DM_CE_PARAMS, SHARED_EVALUATIONS, collect_runs, dataset_available, dataset_label, \
    evaluation_options, methods_with_loss_option, join_reasons, missing_among, needs
from .costs import compute_text, cpu_hours
from .display import fmt, glue, glue_figure, glue_number, glue_text, markdown_table, show_markdown
from .facts import method_color, method_label, scored_network
from .figures import plot_accuracy_vs_fgsm, plot_paper_table, plot_paper_vs_ours, plot_reliability, plot_top1_curves
from .paper_tables import PAPER_NUMBERS_DIR, PaperTable, comparable_to_paper, load_paper_table, nearest_column, \
    paper_table_markdown
from .parameters import NotebookParameters, deviations_markdown, open_table_notebook, validate_parameters
from .propositions import dm_autograd_checks, dm_symbolic_checks, proof_summary
from .scores import SeedStats, comparison_markdown, confidence_gap, evaluation_stats, run_evaluation, run_top1, \
    scored_stats
from .verdicts import DEFAULT_TOLERANCE, EVIDENCE_BUDGETS, K_SE, VERDICTS, Check, Verdict, check_close, \
    check_identity, check_not_worse, check_order, check_symbolic, closeness_checks, decide_verdict, judge, \
    glue_verdict_tables, leader_text, paper_smallest_gain_text, paper_winner_text, read_verdicts, record_verdicts, \
    paper_values_text, paper_versus_text, smallest_gain_text, values_text, verdict_word, versus_text, \
    winner_checks, winner_text
from ..losses.dm_propositions import lambda_sensitivity

__all__ = [
    "DM_CE_PARAMS", "SHARED_EVALUATIONS", "collect_runs", "dataset_available", "dataset_label", "evaluation_options",
    "methods_with_loss_option", "join_reasons", "missing_among", "needs", "open_table_notebook",
    "compute_text", "cpu_hours", "fmt", "glue", "glue_figure", "glue_number", "glue_text", "markdown_table",
    "show_markdown", "method_color", "method_label", "scored_network", "plot_accuracy_vs_fgsm", "plot_paper_table",
    "plot_paper_vs_ours",
    "plot_reliability",
    "plot_top1_curves", "PAPER_NUMBERS_DIR", "PaperTable", "comparable_to_paper", "load_paper_table",
    "nearest_column", "paper_table_markdown", "NotebookParameters", "deviations_markdown", "validate_parameters",
    "dm_autograd_checks", "dm_symbolic_checks", "proof_summary", "lambda_sensitivity", "SeedStats",
    "comparison_markdown",
    "confidence_gap", "evaluation_stats", "run_evaluation", "run_top1", "scored_stats", "DEFAULT_TOLERANCE",
    "EVIDENCE_BUDGETS", "K_SE", "VERDICTS", "Check", "Verdict", "check_close", "check_identity", "check_not_worse",
    "check_order", "check_symbolic", "closeness_checks", "decide_verdict", "judge", "read_verdicts",
    "record_verdicts", "glue_verdict_tables", "verdict_word", "winner_checks", "winner_text", "paper_winner_text",
    "paper_values_text", "paper_versus_text", "smallest_gain_text", "values_text", "versus_text",
    "paper_smallest_gain_text", "leader_text",
]
