# Two commands on a fresh machine with Python 3.11:  make run  |  make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Pinned so pip takes the wheels that lie on this workplace's disk; any machine can fetch them.
TORCH  := torch==2.14.1 torchvision==0.29.1
# OCR with its ONNX models in the wheel; --no-deps because it asks for the GUI opencv-python,
# which would replace the headless cv2 (pyproject.toml lists its other dependencies).
OCR    := rapidocr-onnxruntime==1.4.4
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-fast system-packages demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test,ray]'
	$(PIP) install -q --no-deps $(OCR)
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py

# Debian packages: Chromium for the browser tests; the emoji font and Unicode's emoji-test.txt
# for the demo builder (and its tests); tesseract, the second OCR tier (and its test).
DEBS := chromium fonts-noto-color-emoji unicode-data tesseract-ocr
system-packages:
	@dpkg -s $(DEBS) >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(DEBS); }

test: install system-packages
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not browser"

# Regenerate the bundled demo (images, demo:base, demo:finetuned, catalog, metrics) from scratch.
demo: install system-packages
	$(PY) -m clip_arena.demo.build

clean:
	rm -rf $(VENV) .pytest_cache
