"""Run every study notebook with papermill: ``python -m mixrepro.notebook_runner [--budget B]``.

Without ``--budget`` each notebook is rerun with the parameters it was last executed with
(the committed pages mix budgets: smoke pages prove the pipeline, the audit and pilot pages
load the study's cpu runs), so rerunning an unchanged repository changes no file.
Each ``notebooks/<name>.ipynb`` is executed **in place** with the ``budget``
parameter (papermill inserts an ``injected-parameters`` cell after the
``parameters`` cell), in the notebooks folder, so the committed notebooks are
the executed ones: nbval re-executes exactly them (``tests/test_notebooks.py``)
and the book renders them without executing anything. Runs are shared through
the results store (``notebooks/results``), so a run two notebooks need trains
once. Volatile papermill metadata (timestamps, durations) is dropped so that a
rerun that changes no number changes no byte of the notebook outside figures.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from .config import BUDGETS
from .environment import REPO_ROOT
from .errors import InvalidParameterError, MixreproError
from .io import atomic_write_text

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # where the study's machines keep the data
KERNEL_NAME = "python3"
COMMITTED = "committed"  # --budget value: rerun each notebook with the parameters it was last executed with


def notebook_paths(folder=NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The study notebooks in ``folder`` (sorted), optionally only those named in ``only``."""
    paths = sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))
    if only:
        by_name = {p.stem: p for p in paths}
        for name in only:
            if name not in by_name:
                raise InvalidParameterError("notebook", name, f"one of {sorted(by_name)}")
        paths = [by_name[name] for name in only]
    return paths


def kernel_environment() -> None:
    """Make the ``python3`` kernel this interpreter, point it at the data where the study keeps it, and
    give each kernel one thread: pages are executed the same way on every machine (their runs pin their
    own recipe's threads; ``--jobs`` uses the cores), and the nbval test checks them at two threads."""
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if not os.environ.get("MIXREPRO_DATA") and SHARED_DATA.is_dir():
        os.environ["MIXREPRO_DATA"] = str(SHARED_DATA)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning on stderr
    os.environ["OMP_NUM_THREADS"] = "1"


def is_stderr_stream(output) -> bool:
    return output.get("output_type") == "stream" and output.get("name") == "stderr"


def strip_volatile_metadata(path: Path) -> None:
    """Drop what changes on every run and means nothing for the results.

    Papermill's timestamps, durations and random cell id; and stderr streams: training
    progress bars and warnings, which appear only when a run is trained rather than
    loaded, so a notebook executed with its runs stored would not reproduce them.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    papermill = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        papermill.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not is_stderr_stream(o)]
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill draws a random id on every run
    atomic_write_text(path, nbformat.writes(nb) + "\n")
    path.chmod(0o644)  # the atomic write's temporary file was private; a notebook is not


def run_notebook(path: Path, parameters: dict, timeout_s: int | None = None) -> None:
    """Execute one notebook in place (``run_all`` times it)."""
    import papermill

    papermill.execute_notebook(str(path), str(path), parameters=parameters, kernel_name=KERNEL_NAME,
                               cwd=str(path.parent), progress_bar=False, execution_timeout=timeout_s)
    strip_volatile_metadata(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixrepro.notebook_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default=COMMITTED,
                        help=f"one of {BUDGETS.names()}, or '{COMMITTED}' (default): each notebook with the "
                             "parameters it was last executed with, so a rerun changes nothing when nothing changed")
    parser.add_argument("--only", nargs="*", help="notebook names (without .ipynb) to run; default all")
    parser.add_argument("--no-train", action="store_true", help="load stored runs only; a missing run is an error")
    parser.add_argument("--executed-at", default=None, metavar="BUDGET",
                        help="only the notebooks last executed at this budget (with --only: of those named); "
                             "'--executed-at cpu' re-executes every page that reads the study's runs, e.g. after "
                             "a sweep run lands")
    parser.add_argument("--folder", default=str(NOTEBOOKS_DIR), help="notebooks folder (default notebooks/)")
    parser.add_argument("--results-dir", default=None,
                        help="store and read runs here instead of notebooks/results (an empty folder retrains "
                             "every run the pages need, from scratch)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--keep-going", action="store_true",
                        help="run the remaining notebooks after one fails, list the failures at the end (exit 1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks executed at once (default 1); each kernel trains on one thread, so "
                             "use the machine's cores. A run two pages need is trained once (the other waits)")
    parser.add_argument("--plan-pages", action="store_true",
                        help="execute copies of the pages at budget cpu, loading only, and write the runs they "
                             "miss beyond the study plan as the `pages` sweep plan (mixrepro/plans.py); the "
                             "committed notebooks are not touched")
    args = parser.parse_args(argv)
    if args.plan_pages and args.only:
        parser.error("--plan-pages records every page: with --only it would write a partial plan")
    if args.plan_pages:
        return plan_pages(args)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: must be a positive number of notebooks at once")
    try:
        if args.budget != COMMITTED:
            BUDGETS.get(args.budget)
        paths = notebook_paths(args.folder, args.only)
        if args.executed_at is not None:
            paths = executed_at(paths, args.executed_at)
        plans = {path: notebook_parameters(path, args.budget, args.no_train, args.results_dir) for path in paths}
    except MixreproError as err:
        print(f"notebook_runner: error: {err}", file=sys.stderr)
        return 2
    kernel_environment()
    failed = run_all(plans, args.timeout, args.keep_going, jobs=args.jobs)
    for line in failed:
        print(f"notebook_runner: failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def plan_pages(args) -> int:
    """``--plan-pages``: write the pages plan (:func:`record_pages_plan`) to ``plans.PAGES_PLAN_FILE``."""
    from .io import atomic_write_json
    from .plans import PAGES_PLAN_FILE

    content, failed = record_pages_plan(args.folder, args.results_dir, args.jobs, args.timeout)
    atomic_write_json(PAGES_PLAN_FILE, content)
    print(f"pages plan: {len(content['configs'])} runs, about {content['hours_of_one_core']} hours of one core "
          f"-> {PAGES_PLAN_FILE}")
    for line in failed:
        print(f"notebook_runner: failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def record_pages_plan(folder=NOTEBOOKS_DIR, results_dir=None, jobs: int = 1,
                      timeout_s: int | None = None) -> tuple[dict, list[str]]:
    """(the pages plan's content, the pages that failed): every page executed at budget cpu, loading only,
    as a copy in a scratch folder against the real results store, recording each study-dataset run it
    asks for (``study.collect.record_wanted``); the committed notebooks are not touched."""
    import shutil
    import tempfile

    from .plans import pages_plan_content
    from .study.collect import WANTED_RUNS_ENV

    results_dir = results_dir or str(Path(folder) / "results")
    with tempfile.TemporaryDirectory(prefix="plan-pages-") as scratch:
        copies = [Path(shutil.copy(path, scratch)) for path in notebook_paths(folder)]
        plans = {path: notebook_parameters(path, "cpu", True, results_dir) for path in copies}
        wanted = Path(scratch) / "wanted.jsonl"
        wanted.touch()
        previous = os.environ.get(WANTED_RUNS_ENV)
        os.environ[WANTED_RUNS_ENV] = str(wanted)  # the kernels inherit it
        try:
            kernel_environment()
            failed = run_all(plans, timeout_s, keep_going=True, jobs=jobs)
        finally:
            if previous is None:
                del os.environ[WANTED_RUNS_ENV]
            else:
                os.environ[WANTED_RUNS_ENV] = previous
        return pages_plan_content(wanted.read_text().splitlines()), failed


class NotebookFailed(MixreproError):
    """A notebook raised; the traceback is in the executed notebook itself."""


def run_all(plans: dict, timeout_s: int | None, keep_going: bool, jobs: int = 1) -> list[str]:
    """Execute each notebook, printing its wall seconds (and CPU seconds, one at a time); returns the
    failures ('name: error').

    ``jobs`` notebooks run at once, in the given order, each in a worker process of its own:
    papermill runs a notebook in its folder by changing the *process's* working directory, so two
    notebooks in threads of one process would resolve each other's relative paths (seen: a page's
    ``results`` store created in the repository root). Without ``keep_going`` the first failure
    raises :class:`NotebookFailed` once the notebooks already running have finished; no new one starts.
    """
    start_all, cpu_all = time.perf_counter(), kernel_cpu_seconds()
    failed = []
    for path, seconds, error, cpu in executions(plans, timeout_s, keep_going, jobs):
        print(f"{'FAILED ' if error else ''}{path.name:<45} {seconds:7.1f} s wall {cpu}  {plans[path]}", flush=True)
        if error:
            failed.append(f"{path.name}: {error.splitlines()[-1]}")
    print(f"{'all notebooks':<45} {time.perf_counter() - start_all:7.1f} s wall "
          f"{kernel_cpu_seconds() - cpu_all:7.1f} s cpu")
    if failed and not keep_going:
        raise NotebookFailed(failed[0])
    return failed


# A kernel that dies while starting (seen on a loaded machine: it missed the start-up handshake) ran
# none of the page, so the page is started once more; any other failure is the page's own.
KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"


def execute(path: Path, parameters: dict, timeout_s: int | None) -> tuple[float, str | None]:
    """Run one notebook: (wall seconds, the error's text or None). Module level, so a worker process can run it.
    The kernel learns its page's name (``collect.WANTED_PAGE_ENV``): runs it records for a plan name it."""
    from .study.collect import WANTED_PAGE_ENV

    os.environ[WANTED_PAGE_ENV] = path.stem  # one notebook at a time per process: no other kernel reads it
    start = time.perf_counter()
    for attempt in range(2):
        try:
            run_notebook(path, parameters, timeout_s)
            return time.perf_counter() - start, None
        except Exception as err:
            error = str(err).strip() or type(err).__name__
            if KERNEL_START_FAILURE not in error or attempt == 1:
                return time.perf_counter() - start, error


def executions(plans: dict, timeout_s: int | None, keep_going: bool, jobs: int):
    """(path, wall seconds, error or None, CPU text) per notebook as each ends; stops starting new ones
    after a failure unless ``keep_going``."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if jobs == 1:  # in this process, so each page's kernel CPU time can be told apart
        for path, parameters in plans.items():
            cpu_before = kernel_cpu_seconds()
            seconds, error = execute(path, parameters, timeout_s)
            yield path, seconds, error, f"{kernel_cpu_seconds() - cpu_before:7.1f} s cpu"
            if error and not keep_going:
                return
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, path, parameters, timeout_s): path for path, parameters in plans.items()}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            seconds, error = future.result()
            yield futures[future], seconds, error, ""
            if error and not keep_going:
                for pending in futures:
                    pending.cancel()


def kernel_cpu_seconds() -> float:
    """CPU seconds (user + system) of the finished kernels this runner started.

    Printed beside the wall time because wall time on a shared machine measures the
    neighbours too; a page's CPU time is what it costs wherever it runs.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cell_assignments(path: Path, tag: str) -> dict | None:
    """{name: value} assigned in the notebook's first cell tagged ``tag`` (values that are not literals:
    None), or None when no cell has the tag."""
    import ast

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if tag in cell.metadata.get("tags", []):
            assigned = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    try:
                        assigned[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        assigned[node.targets[0].id] = None
            return assigned
    return None


def committed_parameters(path: Path) -> dict:
    """The parameters papermill injected when ``path`` was last executed (what its outputs show)."""
    injected = cell_assignments(path, "injected-parameters")
    if injected is None:
        raise InvalidParameterError("notebook", path.name, "a notebook executed by the runner (it has no injected "
                                    "parameters); give --budget")
    return injected


def executed_at(paths: list[Path], budget: str) -> list[Path]:
    """The notebooks among ``paths`` last executed at ``budget`` (one of the budgets' names)."""
    BUDGETS.get(budget)
    return [path for path in paths if committed_parameters(path).get("budget") == budget]


def notebook_parameters(path: Path, budget: str, no_train: bool, results_dir: str | None = None) -> dict:
    """``committed``: rerun as last executed; else the given budget (and train=False with --no-train).

    ``results_dir`` (absolute) replaces the results store of every notebook that has that parameter.
    """
    parameters = committed_parameters(path) if budget == COMMITTED else \
        {"budget": budget, **({"train": False} if no_train else {})}
    if results_dir is not None and "results_dir" in (cell_assignments(path, "parameters") or {}):
        parameters["results_dir"] = str(Path(results_dir).resolve())
    return parameters


if __name__ == "__main__":
    sys.exit(main())
