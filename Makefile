# One obvious command per job. Every target runs inside the project's uv environment.
UV ?= uv
STACK ?= dev
ARGS ?=
DURATION ?= 60
RATE ?= 10

.PHONY: install test plan dev bench load

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

# The real service in pod shapes on this machine: results JSON, markdown table and chart in
# service/benchmarks/results/ (ARGS="--fast" for the smoke run; see the README for the duration).
bench: install
	cd service && $(UV) run --project .. python -m benchmarks run $(ARGS)

# The same workloads against a deployed stack: make load URL=$$(pulumi stack output appUrl) DURATION=60 RATE=10
load: install
	@test -n "$(URL)" || { echo "make load needs URL=<the stack's appUrl>"; exit 2; }
	cd service && $(UV) run --project .. python -m benchmarks load --url "$(URL)" --duration $(DURATION) --rate $(RATE) $(ARGS)
