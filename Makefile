# The two commands of the README:
#   make demo   set up, LoRA fine-tune the built-in tiny model on the demo data, then chat with it
#   make test   set up and run the test suite
VENV ?= .venv
BIN := $(VENV)/bin
# the slowest tests are listed at the end, so that a suite growing slow shows where
PYTEST_ARGS ?= --durations=25
DEMO_DIR ?= saves/demo

.PHONY: setup setup-dev demo test bench clean

setup:
	@bash scripts/setup_env.sh bnb,serve,export,webui,rl

setup-dev:
	@bash scripts/setup_env.sh dev,bnb,serve,export,webui,rl,metrics,eval

demo: setup
	$(BIN)/tunelab train examples/tiny_lora_sft.yaml output_dir=$(DEMO_DIR) overwrite_output_dir=true
	$(BIN)/tunelab chat --adapter $(DEMO_DIR) --query "Who are you?"

test: setup-dev
	$(BIN)/python -m pytest tests -q $(PYTEST_ARGS)

bench: setup-dev
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf saves/demo .pytest_cache
