# Futures Lab: `make lab` to learn, `make test` to check everything. Each sets up .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB_PORT  ?= 8888
LAB_ARGS  ?=
ROOT_FLAG := $(shell [ "$$(id -u 2>/dev/null)" = 0 ] && echo --allow-root)
START_METHODS := fork spawn forkserver
# The Pythons the course is tested on (README: 3.11-3.15 supported, 3.10 works but is past its end of
# life). Each is found with pyenv or on PATH; failing that, the ones Debian's testing suite ships are
# run inside a cached Debian-testing root by .ci/debian-python.sh (needs root; browser test left out).
PYTHONS ?= 3.10 3.11 3.12 3.13 3.14 3.15
DEBIAN_PYTHONS ?= 3.14 3.15

.PHONY: lab test test-fast test-start-methods test-pythons doctor benchmark stress clean help

help:
	@echo "make lab      start JupyterLab on the start notebook (sets up $(VENV) on first use)"
	@echo "make test     run every test: unit tests and every notebook under nbval"
	@echo "make doctor   check this machine is ready for the course"
	@echo "make benchmark  print the measured figures (server, tracer, speed-ups)"
	@echo "make test-start-methods   the suite under fork, spawn and forkserver"
	@echo "make test-pythons         the suite on each of: $(PYTHONS) ($(DEBIAN_PYTHONS) in a Debian root if not installed)"
	@echo "make test-fast            everything but the browser test"
	@echo "make stress               the notebooks repeatedly, idle and with every core busy"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) $(ROOT_FLAG) \
		--ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/00-start-here.ipynb \
		--LabApp.news_url=None $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

doctor: $(STAMP)
	$(BIN)/python -m futureslab.doctor

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The whole suite with the multiprocessing start method forced (tests/conftest.py and every
# notebook kernel read FUTURESLAB_START_METHOD). Runs every method even if one fails.
test-start-methods: $(STAMP)
	@failed=""; for m in $(START_METHODS); do \
		echo "=== start method: $$m ==="; \
		FUTURESLAB_START_METHOD=$$m $(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED under:$$failed"; exit 1; fi; \
	echo "passed under every start method: $(START_METHODS)"

# The suite on each Python, each in its own venv (.venv-3.10, ...), found with pyenv or on PATH, else
# (for DEBIAN_PYTHONS) in the Debian-testing root. A Python that cannot be had is MISSING: a failure.
test-pythons:
	@failed=""; for v in $(PYTHONS); do \
		py=""; \
		if command -v pyenv >/dev/null 2>&1; then \
			d=$$(ls -d "$$(pyenv root)/versions/$$v".* 2>/dev/null | grep -v 't$$' | sort -V | tail -n1); \
			[ -n "$$d" ] && py="$$d/bin/python"; \
		fi; \
		[ -n "$$py" ] && [ -x "$$py" ] || py=$$(command -v python$$v || true); \
		if [ -n "$$py" ]; then \
			echo "=== Python $$v ($$py) ==="; \
			$(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v || failed="$$failed $$v"; \
		elif echo " $(DEBIAN_PYTHONS) " | grep -q " $$v "; then \
			echo "=== Python $$v (Debian-testing root, .ci/debian-python.sh; browser test left out) ==="; \
			bash .ci/debian-python.sh $$v python -m pytest -m "not browser" $(PYTEST_ARGS); rc=$$?; \
			if [ $$rc = 90 ]; then failed="$$failed $$v(MISSING)"; elif [ $$rc != 0 ]; then failed="$$failed $$v"; fi; \
		else \
			echo "=== Python $$v: MISSING (pyenv install $$v, or put python$$v on PATH) ==="; \
			failed="$$failed $$v(MISSING)"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on Python:$$failed"; exit 1; fi; \
	echo "passed on every Python: $(PYTHONS)"

# Everything but the browser test (quicker while writing a notebook).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

# The notebooks RUNS times in a row, then BUSY_RUNS times with every core kept busy by another process.
RUNS ?= 3
BUSY_RUNS ?= 3
stress: $(STAMP)
	bash benchmarks/stress_runs.sh $(RUNS) $(BUSY_RUNS)

clean:
	rm -rf $(VENV) .venv-* build src/*.egg-info
