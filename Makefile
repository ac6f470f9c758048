# The README's two commands: `make run` and `make test`. Both set up .venv from requirements.lock
# first, and only when it is missing or the lock changed (the stamp file is named by the lock's hash).
PYTHON ?= python3.11
VENV := .venv
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
CONFIG ?= pipeline.yaml
PYTEST_ARGS ?=

.PHONY: setup run test lock clean

setup: $(STAMP)

$(STAMP): requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --no-deps --ignore-requires-python -r requirements.lock
	touch $@

run: setup
	$(VENV)/bin/python -m pipeline run --config $(CONFIG)

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Re-resolve requirements.in into requirements.lock in a scratch venv (needs the package registry).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	.lock-venv/bin/pip install --quiet --no-deps --ignore-requires-python tfx==1.16.0 ml-pipelines-sdk==1.16.0
	.lock-venv/bin/pip check
	.lock-venv/bin/pip install --quiet --no-deps fairness-indicators==0.47.0
	{ head -5 requirements.lock; .lock-venv/bin/pip freeze; } > requirements.lock.new && mv requirements.lock.new requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) outputs
