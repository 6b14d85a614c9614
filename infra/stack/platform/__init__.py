"""The AWS components: network, cluster, node pools, load balancer, cache, database, registry,
storage and IAM."""
