import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_eks_runtime.errors import error_response

from notes import tasks
from notes.models import Note


def as_json(note: Note) -> dict[str, object]:
    return {"id": note.pk, "text": note.text, "words": note.words, "counted_by": note.counted_by,
            "archived": note.archived is not None, "archived_by": note.archived_by}


@csrf_exempt
def notes(request: HttpRequest) -> JsonResponse:
    """POST {"text": ..., "archive_after": seconds (optional)}: a note, its words counted by a task."""
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "use POST")
    try:
        body = json.loads(request.body)
        text = str(body["text"])
        archive_after = float(body.get("archive_after", -1))
    except (ValueError, KeyError, TypeError):
        return error_response(400, "bad_request", 'expected JSON {"text": "...", "archive_after": seconds}')
    note = Note.objects.create(text=text)
    tasks.count_words.delay(note.pk)
    if archive_after >= 0:
        tasks.archive.delay(note.pk, archive_after)
    return JsonResponse(as_json(note), status=201)


def note(request: HttpRequest, note_id: int) -> JsonResponse:
    found = Note.objects.filter(pk=note_id).first()
    if found is None:
        return error_response(404, "not_found", f"no note with id {note_id}")
    return JsonResponse(as_json(found))
