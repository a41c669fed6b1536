# Fresh machine: `make run` (set up, index the catalogue, start the bot) or `make test`.
PY ?= python3
VENV := .venv
DATASET ?= ../shared/datasets/fashion-small
INDEX ?= index
WEIGHTS ?= imagenet

.PHONY: setup test test-deploy index run bench lint

$(VENV)/.installed: pyproject.toml setup.py $(wildcard bot/locale/*/LC_MESSAGES/*.po)
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[index,dev]'
	$(VENV)/bin/fashion-index fetch-models
	touch $@

setup: $(VENV)/.installed

# The tests also cover the 'scale' extra (PostgreSQL state, metrics); `make run` does not install it.
$(VENV)/.installed-scale: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[index,dev,scale]'
	touch $@

# Three workers on two cores: many tests wait on a bot, a server or a subprocess, and a third worker fills those
# waits (measured on 2 cores: 3 workers 150 s, 2 workers 165 s, 4 workers 163 s); work stealing evens out the
# slow ones.
test: $(VENV)/.installed-scale
	$(VENV)/bin/python -m pytest -n 3 --dist worksteal

# Docker images, compose and the systemd install, as the README's "Deploy" gives them (root, a Docker daemon,
# docker-compose and debootstrap: .ci/run installs them). A second command after `make test`.
test-deploy: $(VENV)/.installed-scale
	$(VENV)/bin/python -m pytest -m deploy -p no:cacheprovider tests/test_docker.py tests/test_systemd.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python .ci/layout.py

# Resumable: after Ctrl-C or a crash, `make index` continues where it stopped.
index: setup
	@if [ -f $(INDEX)/manifest.json ] && [ ! -d $(INDEX)/.partial ]; then \
		echo "$(INDEX) is already built (fashion-index info --index $(INDEX))"; \
	else \
		$(VENV)/bin/fashion-index build --images $(DATASET)/images --metadata $(DATASET)/styles.csv \
			--out $(INDEX) --weights $(WEIGHTS); \
	fi

# A first run does not wait for the whole catalogue: the build runs in the background (log in
# $(INDEX)-build.log) and publishes its products as it goes; the bot starts on the first ones and
# follows the build. Stopping the bot stops the build too; `make run` again resumes it.
run: setup
	@if [ -f $(INDEX)/manifest.json ] && [ ! -d $(INDEX)/.partial ]; then \
		INDEX_DIR=$(INDEX) $(VENV)/bin/fashion-bot --check && INDEX_DIR=$(INDEX) exec $(VENV)/bin/fashion-bot; \
		exit $$?; \
	fi; \
	echo "indexing $(DATASET) in the background (progress: tail -f $(INDEX)-build.log);" \
		"the bot starts as soon as the first products are ready"; \
	$(VENV)/bin/fashion-index build --images $(DATASET)/images --metadata $(DATASET)/styles.csv \
		--out $(INDEX) --weights $(WEIGHTS) > $(INDEX)-build.log 2>&1 & build=$$!; \
	trap 'kill $$build 2>/dev/null' EXIT INT TERM; \
	while [ ! -f $(INDEX)/manifest.json ]; do \
		if ! kill -0 $$build 2>/dev/null; then tail -n 5 $(INDEX)-build.log; exit 1; fi; \
		sleep 1; \
	done; \
	INDEX_DIR=$(INDEX) $(VENV)/bin/fashion-bot --check && INDEX_DIR=$(INDEX) $(VENV)/bin/fashion-bot

bench: setup
	$(VENV)/bin/python -m benchmarks all
