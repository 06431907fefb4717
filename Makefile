# One entry point for set-up, tests, notebooks and the book.
#   make test                    install (first time) and run the test suite
#   make reproduce BUDGET=smoke  run every notebook with papermill, then build the book
#   make book                    build the book from the committed notebooks (never trains)
VENV    ?= .venv
PYTHON  ?= python3
BUDGET  ?= smoke
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: install test reproduce book notebooks clean-book

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

notebooks: $(STAMP)
	$(PY) -m mixrepro.notebook_runner --budget $(BUDGET)

reproduce: notebooks book

book: $(STAMP)
	$(PY) -m mixrepro.book_build

clean-book:
	rm -rf book/_build
