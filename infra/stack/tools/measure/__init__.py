"""`make measure STACK=<stack> [SINCE=1h] [UNTIL=...]`: a deployed stack's own figures over a
window, read from its Prometheus-compatible query API and written as a measured results file that
`make plan ARGS="--measured PATH"` compares with its estimates (docs/measure.md)."""
