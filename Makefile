# The two commands: `make book` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0

.PHONY: book test install vendor chromium clean clean-notebooks

## make book: create .venv if missing, install, execute every chapter at the reader scale, build _build/html
book: install vendor
	TQDM_DISABLE=1 $(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

## make test: unit tests, every chapter at the smoke scale (papermill + nbval), the smoke book in Chromium
test: install vendor chromium
	$(PY) -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install --quiet -e '.[book,test,full]'
	touch $(STAMP)

vendor: install
	$(PY) scripts/vendor_assets.py

chromium:
	scripts/ensure_chromium.sh

## clear outputs of the committed notebooks (they are executed by the book and the tests)
clean-notebooks: install
	$(PY) -m jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf _build _build_smoke
