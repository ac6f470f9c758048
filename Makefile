# The README's two commands: `make run` and `make test`. Both set up .venv from requirements.lock
# first (.ci/install, as the Dockerfile does), and only when it is missing or the lock, pyproject.toml or the
# install script changed (the stamp is named by their hash).
PYTHON ?= python3.11
VENV := .venv
LOCK_HASH := $(shell cat requirements.lock pyproject.toml .ci/install | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
CONFIG ?= pipeline.yaml
PYTEST_ARGS ?=

.PHONY: setup run test lock clean

setup: $(STAMP)

# The lock, then this repo's packages (pipeline, components) as one editable distribution: no PYTHONPATH,
# and every process TFX or Beam starts imports them as installed.
$(STAMP): requirements.lock pyproject.toml .ci/install
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	bash .ci/install $(VENV)/bin/python editable
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
	# pip check may report one line only: TFX's tensorflow-hub<0.16 (see the lock's header)
	! .lock-venv/bin/pip check | grep -v '^tfx 1.16.0 has requirement tensorflow-hub<0.16,>=0.15.0, but you have tensorflow-hub 0.16.1.$$'
	.lock-venv/bin/pip install --quiet --no-deps fairness-indicators==0.47.0 tensorflow-model-remediation==0.1.7.1
	{ head -5 requirements.lock; .lock-venv/bin/pip freeze --all --exclude pip --exclude wheel; } > requirements.lock.new && mv requirements.lock.new requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) outputs
