# One entry point for set-up, tests, notebooks and the book.
#   make test                    install (first time), lint (ruff) and run the whole test suite
#   make test-fast               the same without the tests marked slow (the edit-test loop)
#   make reproduce               rerun every notebook as last executed (papermill), then build the book
#   make reproduce BUDGET=smoke  the same at one budget for all (smoke, cpu, gpu, paper)
#   make reproduce BUDGET=smoke RESULTS=/tmp/fresh  ... with runs stored in (an empty) RESULTS: retrains them all
#   make reproduce JOBS=4        notebooks executed at once (default 2; each kernel trains on one thread)
#   make book                    build the book from the committed notebooks (never trains)
#   make land                    after sweep runs land: re-execute the pages executed at budget cpu
#                                (loading only) and build the book
VENV    ?= .venv
PYTHON  ?= python3
BUDGET  ?= committed
RESULTS ?=
JOBS    ?= 2
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: install test test-fast lint reproduce book notebooks clean-book land

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check mixrepro tests

test: lint
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not slow"

notebooks: $(STAMP)
	$(PY) -m mixrepro.notebook_runner --budget $(BUDGET) --jobs $(JOBS) $(if $(RESULTS),--results-dir $(RESULTS))

reproduce: notebooks book

land: $(STAMP)
	$(PY) -m mixrepro.notebook_runner --executed-at cpu --no-train --jobs $(JOBS) --keep-going
	$(PY) -m mixrepro.book_build

book: $(STAMP)
	$(PY) -m mixrepro.book_build

clean-book:
	rm -rf book/_build

# GPU study on a lent machine (scripts/gpu_study.sh): `make gpu-carry` here fills .gpu-carry/
# (PyMaxflow wheel, data archive, code revision); carry `.gpu-carry` and run `make gpu-study`
# there (OUT set by the machine; PLAN names the sweep plan, WORKERS its processes).
# `make gpu-study-dry` runs the same script on this CPU with tiny settings (20 s deadline).
# The study plan is trained on the CPU; a GPU's minutes go to the pages plan.
PLAN     ?= pages
WORKERS  ?=
DRY_OUT  ?= runs/scratch/gpu-study-dry
STUDY_ARGS = --plan $(PLAN) $(if $(WORKERS),--workers $(WORKERS))

.PHONY: gpu-carry gpu-study gpu-study-dry

gpu-carry: $(STAMP)
	PY=$(PY) bash scripts/gpu_carry.sh

gpu-study:
	bash scripts/gpu_study.sh $(STUDY_ARGS)

gpu-study-dry: $(STAMP)
	OUT=$${OUT:-$(DRY_OUT)} PYTHON=$(PY) bash scripts/gpu_study.sh --dry-run $(STUDY_ARGS)
