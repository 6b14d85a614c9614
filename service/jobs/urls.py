from django.urls import path

from jobs import views

urlpatterns = [
    path("jobs", views.jobs_collection, name="jobs"),
    path("jobs/<str:job_id>", views.job_detail, name="job-detail"),
    path("jobs/<str:job_id>/result", views.job_result, name="job-result"),
    path("io", views.io_wait, name="io"),
]
