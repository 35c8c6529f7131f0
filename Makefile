# The two commands: `make book` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0

.PHONY: book test test-install install vendor chromium clean clean-notebooks

## make book: create .venv if missing, install, execute every chapter at the reader scale, build _build/html
## (the build fetches the offline JavaScript into _vendor/ itself: book/_ext/vendor_assets.py)
## (scripts/warm_cache.py first computes the chapters' results on every core; the build then reads them from the cache)
book: install
	TQDM_DISABLE=1 $(PY) scripts/warm_cache.py
	TQDM_DISABLE=1 $(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

## make test: unit tests, every chapter at the smoke scale (papermill + nbval), the smoke book in Chromium
test: install vendor chromium
	$(PY) -m pytest

## make test-install: build the wheel, install it into a fresh venv exactly as a chapter's install cell
## would, and run every chapter at smoke there (minutes: not part of `make test`)
test-install: install
	$(PY) -m pytest -m install tests/test_install.py

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
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf _build _build_smoke
