from django.urls import include, path

# /healthz and /readyz are answered by config.probes.ProbeMiddleware, ahead of these routes.
urlpatterns = [
    path("api/", include("jobs.urls")),
]

handler400 = "jobs.views.bad_request"
handler403 = "jobs.views.forbidden"
handler404 = "jobs.views.not_found"
handler500 = "jobs.views.server_error"
