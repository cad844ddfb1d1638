# The README's two commands: `make demo` (the main job, offline) and `make test` (the whole suite).
# Each sets up everything it needs on a fresh machine: a virtual env, pip installs, and Debian's ffmpeg
# (audio decoding for `datasets`/torchcodec and mp3/opus export) and espeak-ng (the zero-model TTS fallback).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out
EXTRAS := asr,decode,train,plots,ray,dev

.PHONY: demo test setup system-deps bench clean

setup: $(STAMP)

# torch is installed first and pinned through constraints.txt: the CPU build lies on the local index, and letting a
# dependency resolve torch on its own would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "warning: please install$$missing (tests that need them are skipped)"; \
		fi; \
	fi

demo: $(STAMP)
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/soundmind-data ingest examples/demo/logiqa2-nli-demo.jsonl --format logiqa2-nli --split train --out $(DEMO_DIR)/logiqa-items.jsonl
	$(BIN)/soundmind-data ingest examples/demo/soundmind-demo.jsonl --format soundmind --split train --out $(DEMO_DIR)/items.jsonl
	$(BIN)/soundmind-data validate $(DEMO_DIR)/items.jsonl --json $(DEMO_DIR)/validate.json
	$(BIN)/soundmind-data audit $(DEMO_DIR)/items.jsonl --gold examples/demo/logiqa2-nli-demo.jsonl --json $(DEMO_DIR)/audit.json

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
