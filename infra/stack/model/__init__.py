"""Pure models of what a stack needs and costs, computed without the engine: instance catalog,
prices, zones, pod memory, node capacity, monthly cost, throughput."""
