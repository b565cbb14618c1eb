"""S3 failures in delta-rs's and botocore's wordings become BackendErrors naming the fix."""

from __future__ import annotations

import pytest

from fti.errors import BackendError, NotFoundError
from fti.storage._s3 import s3_error

CASES = [
    # (the backend's message, what the error must name)
    (
        "Generic S3 error: \x1b[31m<Error><Code>NoSuchBucket</Code></Error>",
        "the bucket 'lake' does not exist",
    ),
    ("An error occurred (NoSuchBucket) when calling the PutObject operation", "FTI_OFFLINE_URL"),
    ("An error occurred (InvalidAccessKeyId) when calling the PutObject operation", "AWS_ACCESS_KEY_ID"),
    ("Generic S3 error: response error: <Code>SignatureDoesNotMatch</Code>", "AWS_SECRET_ACCESS_KEY"),
    ("Unable to locate credentials", "AWS_ACCESS_KEY_ID"),
    ("<Code>AuthorizationHeaderMalformed</Code> the region 'us-east-1' is wrong", "FTI_S3_REGION"),
    ("Generic S3 error: error sending request: tcp connect error: Connection refused", "FTI_S3_ENDPOINT_URL"),
    ('Could not connect to the endpoint URL: "http://minio:9000/lake"', "FTI_S3_ENDPOINT_URL"),
    ("something nobody anticipated", "check FTI_OFFLINE_URL, FTI_S3_ENDPOINT_URL"),
]


@pytest.mark.parametrize(("message", "named"), CASES)
def test_each_misconfiguration_names_its_setting(message: str, named: str) -> None:
    error = s3_error(OSError(message), "writing offline table 't'", "s3://lake/offline", "FTI_OFFLINE_URL")
    assert isinstance(error, BackendError)
    assert error.message.startswith("writing offline table 't' failed: ")
    assert named in error.message
    assert "\x1b" not in error.message and "<Error>" not in error.message


def test_fti_errors_pass_through_and_long_messages_are_cut() -> None:
    original = NotFoundError("gone")
    assert s3_error(original, "x", "s3://b/p", "FTI_ARTIFACTS_URL") is original
    error = s3_error(OSError("y" * 5000), "x", "s3://b/p", "FTI_ARTIFACTS_URL")
    assert len(error.message) < 500
