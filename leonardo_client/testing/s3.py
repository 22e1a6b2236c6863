"""The fake's stand-in for the S3 bucket behind POST /init-image: presigned form fields out,
a multipart/form-data POST in, S3's XML errors."""

from __future__ import annotations

import base64
import email
import hashlib
import json
from datetime import datetime, timezone
from email.message import Message
from typing import Dict, List, Tuple, cast

from .server import Answer, ApiError, RecordedRequest

BUCKET = "fake-leonardo-uploads"
EXPIRY = 120.0  # seconds: "The presigned URL expires in 2 minutes"
EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


class S3Error(ApiError):
    """An error of the bucket, answered as S3's XML: S3Error(status, message, code)."""

    def answer(self) -> Answer:
        xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>"
        return Answer(self.status, (xml % (self.code, self.message)).encode("utf-8"), "application/xml")


def policy_failed(field: str) -> S3Error:
    return S3Error(403, 'Invalid according to Policy: Policy Condition failed: ["eq", "$%s"]' % field, "AccessDenied")


def presigned_fields(key: str, extension: str) -> Dict[str, str]:
    """The form fields of a presigned POST for key (the signature is made up)."""
    now = datetime.now(timezone.utc)
    policy = {"expiration": now.isoformat(), "conditions": [{"bucket": BUCKET}, {"key": key}]}
    return {
        "Content-Type": EXTENSIONS[extension],
        "bucket": BUCKET,
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "FAKEACCESSKEY/%s/us-east-1/s3/aws4_request" % now.strftime("%Y%m%d"),
        "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
        "key": key,
        "Policy": base64.b64encode(json.dumps(policy).encode("utf-8")).decode("ascii"),
        "X-Amz-Signature": hashlib.sha256(key.encode("utf-8")).hexdigest(),
    }


def form_parts(request: RecordedRequest) -> List[Tuple[str, bytes]]:
    """The (name, value) parts of a multipart/form-data body, in order."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise S3Error(412, "Bucket POST must be of the enclosure-type multipart/form-data", "PreconditionFailed")
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body)
    if not message.is_multipart():
        raise S3Error(400, "The body of your POST request is not well-formed multipart/form-data", "MalformedPOSTRequest")
    parts = cast(List[Message], message.get_payload())
    return [(str(p.get_param("name", header="content-disposition")), cast(bytes, p.get_payload(decode=True)))
            for p in parts]


def check_form(request: RecordedRequest, parts: List[Tuple[str, bytes]], fields: Dict[str, str], age: float) -> bytes:
    """The uploaded file, once the form is checked as S3 checks a presigned POST."""
    if "Authorization" in request.headers:
        raise S3Error(403, "Requests to a presigned POST URL must not carry an Authorization header", "AccessDenied")
    if age > EXPIRY:
        raise S3Error(403, "Invalid according to Policy: Policy expired.", "AccessDenied")
    if not parts or parts[-1][0] != "file" or [name for name, _ in parts].count("file") != 1:
        raise S3Error(400, "POST requires exactly one file upload per request, as the last field", "InvalidArgument")
    sent = {name: value.decode("utf-8", "replace") for name, value in parts[:-1]}
    for name in sorted(set(fields) | set(sent)):
        if sent.get(name) != fields.get(name):
            raise policy_failed(name)
    return parts[-1][1]
