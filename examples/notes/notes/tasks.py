import time

from celery import shared_task
from django.utils import timezone

from notes.models import Note, Tick


@shared_task(bind=True)
def count_words(self, note_id: int) -> None:  # queue "text"
    note = Note.objects.get(pk=note_id)
    Note.objects.filter(pk=note_id).update(words=len(note.text.split()), counted_by=self.request.hostname)


@shared_task(bind=True)
def archive(self, note_id: int, seconds: float = 0.0) -> None:  # queue "archive": the slow one
    Note.objects.filter(pk=note_id).update(archive_started=timezone.now())
    time.sleep(seconds)
    Note.objects.filter(pk=note_id).update(archived=timezone.now(), archived_by=self.request.hostname)


@shared_task(bind=True)
def tick(self) -> None:  # periodic (beat), queue "text"
    Tick.objects.create(worker=self.request.hostname)
