# Fresh machine: `make run` (set up, index the catalogue, start the bot) or `make test`.
PY ?= python3
VENV := .venv
DATASET ?= ../shared/datasets/fashion-small
INDEX ?= index
WEIGHTS ?= imagenet

.PHONY: setup test index run bench lint

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# Resumable: after Ctrl-C or a crash, `make index` continues where it stopped.
index: setup
	@if [ -f $(INDEX)/manifest.json ] && [ ! -d $(INDEX)/.partial ]; then \
		echo "$(INDEX) is already built (fashion-index info --index $(INDEX))"; \
	else \
		$(VENV)/bin/fashion-index build --images $(DATASET)/images --metadata $(DATASET)/styles.csv \
			--out $(INDEX) --weights $(WEIGHTS); \
	fi

run: index
	INDEX_DIR=$(INDEX) $(VENV)/bin/fashion-bot

bench: setup
	$(VENV)/bin/python benchmarks/run.py
