# Two commands do all the set-up (see README.md):
#   make course   open the course in JupyterLab   (make headless: run the main job instead)
#   make test     install the test dependencies and run every test (unit, nbval, grader, browser)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: course headless test bench site site-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the course extra: the engine plus JupyterLab, ipywidgets and matplotlib
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[course]"
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.runtime $(VENV)/.site $@

course: $(VENV)/.runtime
	$(BIN)/mlcourse course

headless: $(VENV)/.runtime
	$(BIN)/mlcourse train sinusoid

test: $(VENV)/.test
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=120 --timeout=900 tests notebooks solutions exercises

# the course as a static website in _site/ (offline; open _site/index.html); site-check also audits it
$(VENV)/.site: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[site]"
	touch $@

site: $(VENV)/.site
	$(BIN)/mlcourse site _site

site-check: $(VENV)/.site
	$(BIN)/mlcourse site _site --check

bench: $(VENV)/.runtime
	$(BIN)/mlcourse bench

clean:
	rm -rf $(VENV) runs .pytest_cache _site
