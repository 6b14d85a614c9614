"""The offline plan: what a stack would create, whether it fits its nodes, and what it costs.

`python -m stack.tools.plan --stack dev|<name>|all [--json] [--manifests DIR] [--live-prices]`
runs the real Pulumi program against the mock engine (`stack.tools.offline`), then prints the
resources it registers, the capacity table of each node pool, the itemized monthly cost and
every warning. With several stacks it ends with a side-by-side comparison.
"""
