"""A real S3-compatible server for the tests: moto in server mode on a free loopback port.

The service reaches it through boto3 and django-storages exactly as it reaches S3 (only
`AWS_S3_ENDPOINT_URL` differs). Every request it answers is recorded with the access key that
signed it, in the Authorization header or, for a presigned URL, in the query string. Each pod
kind gets access keys of its own (`credentials(kind)`), so a recorded call says which pod kind
made it, and `refused_by_role` evaluates it against that kind's rendered IAM role policy
(infra/stack/platform/storage.py): a call the role would refuse on AWS fails the test, although moto
itself enforces nothing.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from service_processes import free_port
from werkzeug.serving import BaseWSGIServer, make_server

REGION = "eu-west-1"
ADMIN = "admin"
"""The tests' own key: creating buckets and looking at objects is not any pod's call."""


def access_key(kind: str) -> str:
    return f"AKIATEST{kind.upper()}"


def credentials(kind: str) -> dict[str, str]:
    """The environment of a process of this pod kind: its own key pair."""
    return {"AWS_ACCESS_KEY_ID": access_key(kind), "AWS_SECRET_ACCESS_KEY": f"secret-of-{kind}"}


@dataclass(frozen=True)
class S3Call:
    """One request the server answered, as IAM sees it."""

    signer: str
    """The access key that signed it ("" when unsigned)."""
    operation: str
    bucket: str
    key: str | None
    actions: tuple[str, ...]
    """The IAM actions S3 authorizes the operation with (empty: not one we know how to map)."""
    status: int

    def resource(self, partition: str = "aws") -> str:
        return f"arn:{partition}:s3:::{self.bucket}" + ("" if self.key is None else f"/{self.key}")


# (method, has key, sub-resource in the query or None) -> (operation, IAM actions)
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
_OPERATIONS: dict[tuple[str, bool, str | None], tuple[str, tuple[str, ...]]] = {
    ("HEAD", False, None): ("HeadBucket", ("s3:ListBucket",)),
    ("GET", False, None): ("ListObjects", ("s3:ListBucket",)),
    ("GET", False, "list-type"): ("ListObjectsV2", ("s3:ListBucket",)),
    ("PUT", False, None): ("CreateBucket", ("s3:CreateBucket",)),
    ("DELETE", False, None): ("DeleteBucket", ("s3:DeleteBucket",)),
    ("POST", False, "delete"): ("DeleteObjects", ()),  # per-key actions are in the body: unmapped
    ("GET", True, None): ("GetObject", ("s3:GetObject",)),
    ("HEAD", True, None): ("HeadObject", ("s3:GetObject",)),
    ("PUT", True, None): ("PutObject", ("s3:PutObject",)),
    ("PUT", True, "uploadId"): ("UploadPart", ("s3:PutObject",)),
    ("POST", True, "uploads"): ("CreateMultipartUpload", ("s3:PutObject",)),
    ("POST", True, "uploadId"): ("CompleteMultipartUpload", ("s3:PutObject",)),
    ("DELETE", True, "uploadId"): ("AbortMultipartUpload", ("s3:AbortMultipartUpload",)),
    ("GET", True, "uploadId"): ("ListParts", ("s3:ListMultipartUploadParts",)),
    ("DELETE", True, None): ("DeleteObject", ("s3:DeleteObject",)),
}
_SUBRESOURCES = ("uploads", "uploadId", "delete", "list-type")
_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


def s3_call(environ: dict[str, Any], status: int) -> S3Call | None:
    """What a request to the server was, or None for moto's own API (/moto-api/...)."""
    path = unquote(environ.get("PATH_INFO", ""))
    if path.startswith("/moto-api"):
        return None
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    method = environ["REQUEST_METHOD"]
    host = environ.get("HTTP_HOST", "").split(":")[0]
    parts = path.lstrip("/").split("/", 1)
    if host.endswith(".localhost") or (host and not host[0].isdigit() and host != "localhost"):
        bucket, key = host.split(".", 1)[0], path.lstrip("/") or None  # virtual-hosted style
    else:
        bucket, key = parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)
    subresource = next((name for name in _SUBRESOURCES if name in query), None)
    operation, actions = "Unknown", ()
    mapped = _OPERATIONS.get((method, key is not None, subresource))
    if mapped is not None:
        operation, actions = mapped
    if operation == "PutObject" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
        operation, actions = "CopyObject", ()  # needs GetObject on the source too: unmapped
    if subresource is None and any(name in query for name in ("acl", "tagging", "policy", "lifecycle")):
        operation, actions = f"{method} ?{'&'.join(query)}", ()
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    signer = match.group(1) if match else query.get("X-Amz-Credential", [""])[0].split("/")[0]
    return S3Call(signer=signer, operation=operation, bucket=bucket, key=key, actions=actions, status=status)


@dataclass
class S3Server:
    """moto's S3 in a thread of the test process, recording every call."""

    url: str = ""
    calls: list[S3Call] = field(default_factory=list)
    _server: BaseWSGIServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, port: int = 0) -> S3Server:
        """Serve on `port` (a free one when 0)."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        moto_app = DomainDispatcherApplication(create_backend_app)

        def recording_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            seen: dict[str, int] = {}

            def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                seen["status"] = int(status.split()[0])
                return start_response(status, headers, exc_info)

            body = moto_app(environ, recording_start_response)
            call = s3_call(environ, seen.get("status", 0))
            if call is not None:
                with self._lock:
                    self.calls.append(call)
            return body

        port = port or free_port()
        self._server = make_server("127.0.0.1", port, recording_app, threaded=True,
                                   request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, name="s3-server", daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def client(self, kind: str = ADMIN) -> Any:
        keys = credentials(kind)
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self, prefix: str = "files") -> str:
        name = f"django-eks-test-{prefix}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def calls_on(self, bucket: str) -> list[S3Call]:
        with self._lock:
            return [call for call in self.calls if call.bucket == bucket and call.signer != access_key(ADMIN)]

    def env(self, bucket: str, kind: str) -> dict[str, str]:
        """What a process of this pod kind gets to use the bucket: the cluster's variables, plus
        the endpoint and its own keys."""
        return {"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_REGION_NAME": REGION, "AWS_S3_ENDPOINT_URL": self.url,
                **credentials(kind)}


def kind_of(call: S3Call, kinds: Iterable[str]) -> str | None:
    return next((kind for kind in kinds if access_key(kind) == call.signer), None)


def refused_by_role(calls: Iterable[S3Call], region: str = REGION) -> Iterator[str]:
    """Each call the signer's pod role (as the program renders it) would not allow on AWS."""
    from stack.platform.storage import POD_ACCESS, bucket_arn, bucket_policy, partition, pod_policy
    from tests.infra.support.iam_evaluator import Request, evaluate

    for call in calls:
        kind = kind_of(call, POD_ACCESS)
        if kind is None:
            yield f"{call.operation} {call.key or call.bucket}: signed by {call.signer!r}, not a pod kind's key"
            continue
        if not call.actions:
            yield f"{kind}: {call.operation} {call.key or call.bucket}: no IAM mapping (not a call any role allows)"
            continue
        arn = bucket_arn(call.bucket, region)
        for action in call.actions:
            decision = evaluate(
                Request(action, call.resource(partition(region)), principal=f"arn:aws:iam::123456789012:role/{kind}"),
                identity_policies=[pod_policy(POD_ACCESS[kind], arn)],
                resource_policy=bucket_policy(arn),
            )
            if decision != "allowed":
                yield f"{kind}: {call.operation} {call.key or call.bucket} needs {action}: {decision}"
