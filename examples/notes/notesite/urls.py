from django.urls import path

from notes import views

# /healthz and /readyz: django_eks_runtime.probes.ProbeMiddleware, ahead of these.
urlpatterns = [
    path("api/notes", views.notes),
    path("api/notes/<int:note_id>", views.note),
]

handler400 = "django_eks_runtime.errors.bad_request"
handler403 = "django_eks_runtime.errors.forbidden"
handler404 = "django_eks_runtime.errors.not_found"
handler500 = "django_eks_runtime.errors.server_error"
