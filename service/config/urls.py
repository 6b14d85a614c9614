from django.urls import include, path

# /healthz and /readyz are answered by django_eks_runtime.probes.ProbeMiddleware, ahead of these routes.
urlpatterns = [
    path("api/", include("jobs.urls")),
]

# Django's own errors as JSON (django_eks_runtime/errors.py).
handler400 = "django_eks_runtime.errors.bad_request"
handler403 = "django_eks_runtime.errors.forbidden"
handler404 = "django_eks_runtime.errors.not_found"
handler500 = "django_eks_runtime.errors.server_error"
