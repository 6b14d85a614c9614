"""The cheapest stack for a load: `make plan ARGS="--recommend --jobs-per-hour N --rps M"`.

`search` tries every catalogued instance type, measured worker concurrency and web shape, CPU
request (a node split evenly between 1, 2, ... pods), replica count and node count, and keeps
the configurations that meet the load with headroom; `stack_file` writes the best one as a
`Pulumi.exp-<name>.yaml` the plan then runs like any other stack.
"""
