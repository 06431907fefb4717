"""Build the Jupyter Book offline: ``python -m mixrepro.book_build``.

Never executes a notebook and never trains: it renders the committed, executed
notebooks (run them first with ``python -m mixrepro.notebook_runner``).

Steps:

1. stage the book sources in ``book/_build/source/`` (ignored by git): the
   hand-written pages of ``book/``, the executed ``notebooks/*.ipynb``, and two
   generated pages, the claims ledger (from the verdicts each notebook recorded)
   and the environment page (from the committed runs' ``environment.json``);
2. ``jupyter-book build`` that folder with warnings as errors (``-W``); math is
   served by ``sphinx-mathjax-offline``, nothing is fetched from the network;
3. HTML lands in ``book/_build/html/`` (open ``index.html``).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .environment import REPO_ROOT
from .io import atomic_write_text
from .report import claims_ledger_markdown, environment_markdown

BOOK_DIR = REPO_ROOT / "book"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RESULTS_DIR = NOTEBOOKS_DIR / "results"
GENERATED_PAGES = ("claims_ledger.md", "environment.md")


def stage_sources(book_dir=BOOK_DIR, notebooks_dir=NOTEBOOKS_DIR, results_dir=RESULTS_DIR) -> Path:
    """Copy pages and executed notebooks into ``<book>/_build/source`` and generate the derived pages."""
    book_dir, notebooks_dir = Path(book_dir), Path(notebooks_dir)
    source = book_dir / "_build" / "source"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for item in book_dir.iterdir():
        if item.name.startswith((".", "_build")) or item.name in GENERATED_PAGES:
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, source / item.name)
    notebooks = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    (source / "notebooks").mkdir()
    for nb in notebooks:
        shutil.copy2(nb, source / "notebooks" / nb.name)
    atomic_write_text(source / "claims_ledger.md", claims_ledger_markdown(notebooks))
    atomic_write_text(source / "environment.md", environment_markdown(results_dir))
    return source


def build(book_dir=BOOK_DIR, notebooks_dir=NOTEBOOKS_DIR, results_dir=RESULTS_DIR, builder: str = "html") -> Path:
    """Stage and build; returns the HTML folder. Raises CalledProcessError on any Sphinx warning."""
    source = stage_sources(book_dir, notebooks_dir, results_dir)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", str(source),
               "--path-output", str(Path(book_dir)), "--builder", builder, "-W", "-n", "--keep-going"]
    subprocess.run(command, check=True)
    return Path(book_dir) / "_build" / builder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixrepro.book_build", description=__doc__.splitlines()[0])
    parser.add_argument("--builder", default="html", help="jupyter-book builder (default html)")
    args = parser.parse_args(argv)
    try:
        out = build(builder=args.builder)
    except subprocess.CalledProcessError as err:
        print(f"book build failed (exit {err.returncode}); warnings count as errors", file=sys.stderr)
        return 1
    print(f"book built: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
