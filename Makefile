# One obvious command per job. Every target runs inside the project's uv environment.
UV ?= uv
STACK ?= dev
ARGS ?=

.PHONY: install test plan dev

install:
	$(UV) sync --frozen
	npm ci --no-audit --no-fund --silent

test: install
	$(UV) run mypy
	$(UV) run pytest

plan: install
	$(UV) run python -m stack.plan --stack $(STACK) $(ARGS)

dev: install
	$(UV) run --package django-eks-service python service/dev.py
