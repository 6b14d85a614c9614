# One obvious command per job. Every target runs inside the project's uv environment.
UV ?= uv
STACK ?= dev
ARGS ?=

.PHONY: install install-python test plan dev

# Bytecode is compiled once, here, into __pycache__ next to the sources: environments that set
# PYTHONDONTWRITEBYTECODE would otherwise recompile pulumi_aws and pulumi_kubernetes on every
# run, the larger part of a plan's time. PYTHONPYCACHEPREFIX is unset so that every run reads
# those caches whatever the environment. The stamp skips the sync while the lock and the
# manifests are unchanged.
PYTHON_STAMP := .venv/.synced-with-bytecode
CACHED := env -u PYTHONPYCACHEPREFIX

$(PYTHON_STAMP): uv.lock pyproject.toml service/pyproject.toml
	$(CACHED) $(UV) sync --frozen --compile-bytecode
	@touch $@

install-python: $(PYTHON_STAMP)
	@$(CACHED) $(UV) run --frozen --no-sync python -m compileall -q infra

install: install-python
	npm ci --no-audit --no-fund --silent

test: install
	$(UV) run mypy
	$(UV) run pytest

plan: install-python
	$(CACHED) $(UV) run --frozen --no-sync python -m stack.plan --stack $(STACK) $(ARGS)

dev: install
	$(UV) run --package django-eks-service python service/dev.py
