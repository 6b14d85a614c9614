from django.db import models


class Note(models.Model):
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    # Filled in by the tasks, with the name of the worker that ran each.
    words = models.IntegerField(null=True)
    counted_by = models.CharField(max_length=200, blank=True)
    archive_started = models.DateTimeField(null=True)
    archived = models.DateTimeField(null=True)
    archived_by = models.CharField(max_length=200, blank=True)


class Tick(models.Model):
    """One run of the periodic task."""

    at = models.DateTimeField(auto_now_add=True)
    worker = models.CharField(max_length=200)
