"""The autoscalers the cluster runs: KEDA (pods follow the Celery queue) and the Cluster
Autoscaler (nodes follow Pending pods)."""
