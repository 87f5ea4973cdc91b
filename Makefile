# ban-bot: the two commands a newcomer needs are `make run` and `make test`.
# The Dockerfile runs the same `make install` / `make index` recipes (tests/test_dockerfile.py checks it).

PYTHON ?= python3
VENV   ?= .venv
# Optional dependency groups to install: `dev` (test and lint tools) for developers; the Docker
# image passes EXTRAS= so it carries none of them.
EXTRAS ?= dev
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test quick lint index bench load eval clean

install: $(STAMP)

# Re-run pip only when the project's dependencies change; a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.$(if $(strip $(EXTRAS)),[$(strip $(EXTRAS))])'
	touch $(STAMP)

index: install
	$(BIN)/ban-bot index build

# Socket Mode when SLACK_BOT_TOKEN and SLACK_APP_TOKEN are set, the local chat otherwise.
# The build's one-line report goes to stderr so `echo "question" | make run` prints just the answer.
run: install
	@$(BIN)/ban-bot index build >&2
	@$(BIN)/ban-bot run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot tests
	$(BIN)/hadolint Dockerfile

# ARGS go to pytest: make test ARGS="-k slack", make test ARGS="tests/test_cli.py -x".
# JOBS pytest-xdist workers (most tests wait on HTTP, subprocesses or Slack's retry back-off, so
# two workers on two cores take about two thirds of the time); JOBS=0 runs in one process.
ARGS ?=
JOBS ?= 2
test: install lint
	$(BIN)/python -m pytest -q -n $(JOBS) $(ARGS)

# The tests that need no real model (not marked `slow`), without the lint: for while you work.
quick: install
	$(BIN)/python -m pytest -q -n $(JOBS) -m "not slow" $(ARGS)

eval: index
	$(BIN)/ban-bot eval

bench: index
	$(BIN)/python -m bot.bench

# HTTP mode under load (tests/load.py): MENTIONS signed @mentions from CLIENTS concurrent clients
# against the local Slack Web API stand-in, on 127.0.0.1 only; exits 1 when a target is missed.
MENTIONS ?= 600
CLIENTS  ?= 20
load: index
	$(BIN)/python tests/load.py --mentions $(MENTIONS) --clients $(CLIENTS)

clean:
	rm -rf $(VENV) index/CURRENT index/builds
