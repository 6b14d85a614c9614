"""What the cluster runs for the platform: the AWS Load Balancer Controller, KEDA, the Cluster
Autoscaler and the previewers' access."""
