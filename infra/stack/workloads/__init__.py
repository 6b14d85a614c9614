"""The app running in the cluster: Django and Celery, migrations, autoscaling, and the AWS Load
Balancer Controller that registers the web pods in the platform's target group.

The package imports none of its modules: `component.Workloads` registers the objects that
`manifests.app_manifests` orders (see manifests.py for the map of the modules).
"""
