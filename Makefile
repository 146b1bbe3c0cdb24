# Two commands on a fresh machine with Python 3.11:  make run  |  make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Pinned so pip takes the wheels that lie on this workplace's disk; any machine can fetch them.
TORCH  := torch==2.14.1 torchvision==0.29.1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-fast chromium bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py

# Browser tests drive Debian's Chromium; install it when missing.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

test: install chromium
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not browser"

clean:
	rm -rf $(VENV) .pytest_cache
