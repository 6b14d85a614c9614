"""Only the old home of `stack.platform.node_group_scaling`, kept for stored providers (see
`node_group_scaling` here)."""
