"""A job's files: its upload and its result, in the "jobs" storage.

In the cluster the storage is the S3 bucket named by AWS_STORAGE_BUCKET_NAME (django-storages),
elsewhere a local directory (DJANGO_MEDIA_ROOT). Keys live under the two prefixes the pods'
IAM roles are written for (infra/stack/platform/storage.py): the web pods put ``uploads/`` and presign
``results/``, the workers read ``uploads/`` and put ``results/``, the reconciler deletes both.
So nothing here may call anything else on S3: no HeadObject before a put (the storage
overwrites), no listing, no copy.
"""

import os
import threading
import uuid
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

UPLOADS = "uploads/"
RESULTS = "results/"

# What a storage raises when it cannot be reached or refuses a request: botocore's errors for
# S3, OSError for a local directory.
_STORE_ERRORS = (BotoCoreError, ClientError, OSError)


class FileStoreUnavailable(Exception):
    """The storage could not be reached, or refused the request (bucket, credentials, disk)."""


class BucketStorage(S3Storage):
    """django-storages' S3 storage, except that a delete in a bucket that does not exist fails.

    S3 answers DeleteObject with 204 whether or not the key exists; a 404 means the bucket is
    missing (a wrong AWS_STORAGE_BUCKET_NAME), which django-storages would take for success:
    the expiry would then delete rows and leave their files behind.
    """

    def delete(self, name: str) -> None:
        self.bucket.Object(self._normalize_name(clean_name(name))).delete()


def job_files() -> Storage:
    return storages["jobs"]


def upload_key(job_id: uuid.UUID | str) -> str:
    return f"{UPLOADS}{job_id}"


def result_key(job_id: uuid.UUID | str) -> str:
    return f"{RESULTS}{job_id}.webp"


def file_store_name() -> str:
    """The bucket or directory files go to, for messages."""
    storage = job_files()
    if isinstance(storage, S3Storage):
        return f"bucket {storage.bucket_name!r}"
    if isinstance(storage, FileSystemStorage):
        return f"directory {str(storage.location)!r}"
    return type(storage).__name__


def _unavailable(action: str, key: str, exc: BaseException) -> FileStoreUnavailable:
    return FileStoreUnavailable(f"{action} {key} in {file_store_name()}: {type(exc).__name__}: {exc}")


def file_store(*, key: str, file: IO[bytes], content_type: str) -> str:
    """Write ``file`` under ``key`` (replacing what is there); returns the key it was stored under.

    The object's Content-Type is ``content_type``, never what a client declared.
    """
    content = File(file)
    content.content_type = content_type  # type: ignore[attr-defined]  # read by django-storages
    try:
        return job_files().save(key, content)
    except _STORE_ERRORS as exc:
        raise _unavailable("storing", key, exc) from exc


def file_read(*, key: str) -> bytes:
    """The whole file. Raises FileNotFoundError when there is none, FileStoreUnavailable otherwise."""
    try:
        with job_files().open(key, "rb") as stored:
            data: bytes = stored.read()
            return data
    except FileNotFoundError:
        raise
    except _STORE_ERRORS as exc:
        raise _unavailable("reading", key, exc) from exc


def file_open(*, key: str) -> File:
    """The file, open for reading, for a response that streams it (local storage)."""
    try:
        return job_files().open(key, "rb")
    except FileNotFoundError:
        raise
    except _STORE_ERRORS as exc:
        raise _unavailable("opening", key, exc) from exc


def file_delete(*, key: str) -> None:
    """Delete a file; a missing one is not an error (S3's DeleteObject answers 204 either way)."""
    try:
        job_files().delete(key)
    except FileNotFoundError:
        pass
    except _STORE_ERRORS as exc:
        raise _unavailable("deleting", key, exc) from exc


def file_url(*, key: str, filename: str, content_type: str) -> str | None:
    """A short-lived presigned GET URL of the file, or None when the storage has no URLs of its own
    (a local directory: the app serves the bytes itself).

    Signed locally with the web role's credentials, so S3 checks s3:GetObject on the key
    against that role when the client follows the URL; no request is made here.
    """
    storage = job_files()
    if not isinstance(storage, S3Storage):
        return None
    url: str = storage.url(
        key,
        parameters={
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'inline; filename="{filename}"',
        },
    )
    return url


_bucket_clients: dict[tuple[object, ...], Any] = {}
_bucket_clients_lock = threading.Lock()


def _bucket_check_client(storage: S3Storage) -> Any:
    # One client per process and storage, built once: the storage's own are per thread, and the
    # probe server answers each probe on a new thread (a boto3 session takes tens of milliseconds
    # to build). Short timeouts and one attempt: a probe must answer within its own timeout.
    key = (storage.region_name, storage.endpoint_url, storage.access_key, storage.secret_key,
           storage.security_token)
    with _bucket_clients_lock:
        client = _bucket_clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            client = _bucket_clients[key] = boto3.session.Session().client(
                "s3",
                region_name=storage.region_name,
                endpoint_url=storage.endpoint_url,
                aws_access_key_id=storage.access_key,
                aws_secret_access_key=storage.secret_key,
                aws_session_token=storage.security_token,
                config=Config(connect_timeout=2, read_timeout=2, retries={"mode": "standard", "max_attempts": 1}),
            )
        return client


def file_store_check() -> None:
    """Raise FileStoreUnavailable, naming the bucket, unless the storage can be used.

    S3: HeadBucket, which needs only s3:ListBucket (web and worker roles have it) and answers 404
    for a missing bucket, 403 for refused credentials or a role without access. Local: the
    directory exists (or can be made) and is writable.
    """
    storage = job_files()
    if isinstance(storage, S3Storage):
        bucket = storage.bucket_name
        try:
            _bucket_check_client(storage).head_bucket(Bucket=bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 404 or code == "NoSuchBucket":
                raise FileStoreUnavailable(f"bucket {bucket!r} does not exist (HeadBucket: 404)") from exc
            if status == 403:
                raise FileStoreUnavailable(
                    f"bucket {bucket!r}: access denied (HeadBucket: 403): the credentials were refused "
                    "or do not allow s3:ListBucket on it"
                ) from exc
            raise FileStoreUnavailable(f"bucket {bucket!r}: HeadBucket failed: {exc}") from exc
        except BotoCoreError as exc:
            raise FileStoreUnavailable(f"bucket {bucket!r}: {type(exc).__name__}: {exc}") from exc
        return
    if isinstance(storage, FileSystemStorage):
        location = str(storage.location)
        try:
            os.makedirs(location, exist_ok=True)
        except OSError as exc:
            raise FileStoreUnavailable(f"directory {location!r}: {exc}") from exc
        if not os.access(location, os.W_OK | os.X_OK):
            raise FileStoreUnavailable(f"directory {location!r} is not writable")
