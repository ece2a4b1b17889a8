# The README's commands (`make help` lists them). Each creates the virtual environment .venv
# (Python 3.11 when available) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help tutorial dsdl-sdl test lab book venv clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --upgrade pip
	$(VENV_PY) -m pip install -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with its dev extra (the others call it)

tutorial: $(STAMP)  ## the main job: notebooks 01-06 headless on the built-in dataset, outputs and figures/ written
	$(VENV_PY) -m msrn_core.running.run_notebooks 01 02 03 04 05 06

dsdl-sdl: $(STAMP)  ## notebooks 07-08: DSDL and SDL beside MSRN (loads the main job's runs)
	$(VENV_PY) -m msrn_core.running.run_notebooks 07 08

test: $(STAMP)  ## the test suite (what CI runs)
	$(VENV_PY) -m pytest

lab: $(STAMP)  ## JupyterLab from .venv, with working widgets
	$(VENV_PY) -m pip install -e ".[lab]"
	$(VENV_PY) -m jupyter lab notebooks/

book: $(STAMP)  ## the notebooks with their committed outputs as a static site: build/book/html/index.html
	$(VENV_PY) -m msrn_core.running.book

clean:  ## remove trained runs (runs/) and built files (build/)
	rm -rf runs build
