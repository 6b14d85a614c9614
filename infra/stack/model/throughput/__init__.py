"""What a stack can serve, from benchmark results: jobs per hour, requests per second, $ per job.

`results` reads and validates a benchmark results file (`make bench`, schema
`django-eks-bench/1` or `/2`); `cpu` turns the measuring machine's per-CPU figures into an EC2
type's; `estimate` computes a stack's throughput and cost per unit of work from its config.
"""
