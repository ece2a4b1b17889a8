# The two commands of the README:
#   make tutorial   the main job: built-in dataset -> train MSRN and the plain baseline -> metrics + figures
#   make test       the test suite
# Each creates the virtual environment .venv (Python 3.11 when available) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: tutorial test venv clean

$(STAMP): pyproject.toml
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --upgrade pip
	$(VENV_PY) -m pip install -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

tutorial: $(STAMP)
	$(VENV_PY) -m msrn_core.tutorial

test: $(STAMP)
	$(VENV_PY) -m pytest

clean:
	rm -rf runs figures/*.png
