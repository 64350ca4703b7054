# The README's two commands: `make demo` and `make test`. Each creates .venv and installs first if needed.
# Offline except for the package registries: torch and torchvision come from pip (this machine's disk
# or PyPI), everything else from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1
# Two xdist workers on a 2-core machine; override with `make test PYTEST_ARGS=...`.
PYTEST_ARGS ?= -n 2 --dist worksteal

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'grad-cam>=1.5'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vislab demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) bench/train_speed.py
	$(PY) bench/time_to_accuracy.py
	$(PY) bench/generate_speed.py
	$(PY) bench/sr_speed.py
	$(PY) bench/style_speed.py
	$(PY) bench/video_speed.py
	$(PY) bench/search_speed.py --n 100000   # the 1,000,000-vector run of docs/embed.md: --n 1000000

clean:
	rm -rf runs .pytest_cache
