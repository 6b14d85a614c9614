"""Pure models of what a stack needs and costs, computed from a valid config without the engine:
prices, zones, node capacity, monthly cost, throughput, pod requests."""
