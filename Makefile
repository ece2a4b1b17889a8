# The README's commands:
#   make tutorial   the main job: run the MSRN sequence (notebooks 01-06) headless on the built-in dataset
#   make dsdl-sdl   notebooks 07-08: DSDL and SDL beside MSRN (uses the runs of the main job)
#   make test       the test suite
#   make lab        JupyterLab from the project's environment, with working widgets
# Each creates the virtual environment .venv (Python 3.11 when available) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: tutorial dsdl-sdl test lab venv clean

$(STAMP): pyproject.toml
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --upgrade pip
	$(VENV_PY) -m pip install -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

tutorial: $(STAMP)
	$(VENV_PY) -m msrn_core.running.run_notebooks 01 02 03 04 05 06

dsdl-sdl: $(STAMP)
	$(VENV_PY) -m msrn_core.running.run_notebooks 07 08

test: $(STAMP)
	$(VENV_PY) -m pytest

lab: $(STAMP)
	$(VENV_PY) -m pip install -e ".[lab]"
	$(VENV_PY) -m jupyter lab notebooks/

clean:
	rm -rf runs
