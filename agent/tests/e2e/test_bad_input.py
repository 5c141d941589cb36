# SPDX-License-Identifier: Apache-2.0
"""Bad requests: each checks the S3 error code and HTTP status, and that nothing was stored or lost."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

import harness
from conftest import new_bucket_name


def err(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


# --------------------------------------------------------------------------- authentication


def test_wrong_secret(s3env, s3, bucket):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"keep me")
    bad = harness.boto3_client(s3env.endpoint, s3env.access_key, s3env.secret_key + "x")
    with pytest.raises(ClientError) as ei:
        bad.put_object(Bucket=bucket, Key="intruder", Body=b"nope")
    assert err(ei.value) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as ei:
        bad.put_object(Bucket=bucket, Key="existing", Body=b"overwritten")
    assert err(ei.value) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as ei:
        bad.delete_object(Bucket=bucket, Key="existing")
    assert err(ei.value) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as ei:
        bad.get_object(Bucket=bucket, Key="existing")
    assert err(ei.value) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as ei:
        bad.list_objects_v2(Bucket=bucket)
    assert err(ei.value) == (403, "SignatureDoesNotMatch")
    name = new_bucket_name("bad")
    with pytest.raises(ClientError) as ei:
        bad.create_bucket(Bucket=name)
    assert err(ei.value) == (403, "SignatureDoesNotMatch")

    assert keys(s3, bucket) == ["existing"]
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"keep me"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_unknown_access_key(s3env, s3, bucket):
    bad = harness.boto3_client(s3env.endpoint, "AKIANOSUCHKEY0000000", s3env.secret_key)
    with pytest.raises(ClientError) as ei:
        bad.put_object(Bucket=bucket, Key="intruder", Body=b"nope")
    assert err(ei.value) == (403, "InvalidAccessKeyId")
    assert keys(s3, bucket) == []


def test_unsigned_anonymous(s3env, s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret data")
    anon = harness.boto3_client(s3env.endpoint, None, None, unsigned=True)
    with pytest.raises(ClientError) as ei:
        anon.get_object(Bucket=bucket, Key="private")
    assert err(ei.value) == (403, "AccessDenied")
    with pytest.raises(ClientError) as ei:
        anon.put_object(Bucket=bucket, Key="anon", Body=b"anon")
    assert err(ei.value) == (403, "AccessDenied")
    with pytest.raises(ClientError) as ei:
        anon.delete_object(Bucket=bucket, Key="private")
    assert err(ei.value) == (403, "AccessDenied")
    with pytest.raises(ClientError) as ei:
        anon.list_objects_v2(Bucket=bucket)
    assert err(ei.value) == (403, "AccessDenied")
    try:  # AWS: 403 AccessDenied; an empty list (nothing disclosed) is acceptable too.
        assert anon.list_buckets().get("Buckets", []) == []
    except ClientError as e:
        assert err(e) == (403, "AccessDenied")
    assert keys(s3, bucket) == ["private"]
    assert s3.get_object(Bucket=bucket, Key="private")["Body"].read() == b"secret data"


def test_request_time_too_skewed(s3env, s3, signer, bucket):
    import requests

    url = f"{s3env.endpoint}/{bucket}/skewed"
    body = b"late"
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    hdrs, *_ = signer.sign("PUT", url, {}, hashlib.sha256(body).hexdigest(), amz_date=old)
    r = requests.put(url, data=body, headers=hdrs, timeout=30)
    status, code, text = harness.s3_error(r)
    assert (status, code) == (403, "RequestTimeTooSkewed"), text
    assert keys(s3, bucket) == []


def test_payload_hash_mismatch(s3env, s3, signer, bucket):
    import requests

    url = f"{s3env.endpoint}/{bucket}/tampered"
    hdrs, *_ = signer.sign("PUT", url, {}, hashlib.sha256(b"what was signed").hexdigest())
    r = requests.put(url, data=b"what was sent!!", headers=hdrs, timeout=30)
    status, code, text = harness.s3_error(r)
    assert (status, code) == (400, "XAmzContentSHA256Mismatch"), text
    assert keys(s3, bucket) == []


def test_aws_chunked_bad_chunk_signature(s3env, s3, signer, bucket):
    s3.put_object(Bucket=bucket, Key="chunked", Body=b"original")
    data = os.urandom(150_000)
    r = signer.chunked_put(f"{s3env.endpoint}/{bucket}/chunked", data, corrupt_chunk_signature=True)
    status, code, text = harness.s3_error(r)
    assert (status, code) == (403, "SignatureDoesNotMatch"), text
    assert keys(s3, bucket) == ["chunked"]
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"original"


def test_aws_chunked_bad_trailer_checksum(s3env, s3, signer, bucket):
    s3.put_object(Bucket=bucket, Key="chunked", Body=b"original")
    data = os.urandom(150_000)
    r = signer.chunked_put(f"{s3env.endpoint}/{bucket}/chunked", data, mode="unsigned",
                           corrupt_trailer=True)
    status, code, text = harness.s3_error(r)
    assert (status, code) == (400, "BadDigest"), text
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"original"


# --------------------------------------------------------------------------- integrity headers


def test_wrong_content_md5(s3, bucket):
    s3.put_object(Bucket=bucket, Key="md5", Body=b"version 1")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"version 2", ContentMD5=content_md5(b"version X"))
    assert err(ei.value) == (400, "BadDigest")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="new", Body=b"data", ContentMD5=content_md5(b"other"))
    assert err(ei.value) == (400, "BadDigest")
    assert keys(s3, bucket) == ["md5"]
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == b"version 1"


def test_wrong_checksum_crc32(s3, bucket):
    s3.put_object(Bucket=bucket, Key="crc", Body=b"version 1")
    with pytest.raises(ClientError) as ei:
        # Sets the header itself, so botocore does not compute one.
        s3.put_object(Bucket=bucket, Key="crc", Body=b"version 2", ChecksumCRC32="AAAAAA==")
    status, code = err(ei.value)
    assert status == 400 and code in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest"), (status, code)
    assert s3.get_object(Bucket=bucket, Key="crc")["Body"].read() == b"version 1"


# --------------------------------------------------------------------------- malformed XML


def test_malformed_xml_complete_multipart(s3env, s3, signer, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"part one")["ETag"]
    url = f"{s3env.endpoint}/{bucket}/mp?uploadId={uid}"
    for body in [
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",  # truncated
        b"this is not xml at all",
    ]:
        r = signer.request("POST", url, body=body, headers={"content-type": "application/xml"})
        status, code, text = harness.s3_error(r)
        assert (status, code) == (400, "MalformedXML"), (body, text)
    assert keys(s3, bucket) == []
    # The upload and its part are intact and can still be completed.
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, etag)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part one"


def test_malformed_xml_delete_objects(s3env, s3, signer, bucket):
    for k in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    url = f"{s3env.endpoint}/{bucket}?delete"
    for body in [
        b"<Delete><Object><Key>a</Key></Object>",  # truncated
        b"<<<>>>",
        b"<Delete><Object><Key>a</Key></Object></Delete><trailing/>",
        b"",
    ]:
        r = signer.request("POST", url, body=body, headers={
            "content-type": "application/xml", "content-md5": content_md5(body)})
        status, code, text = harness.s3_error(r)
        allowed = ("MalformedXML", "MissingRequestBodyError") if not body else ("MalformedXML",)
        assert status == 400 and code in allowed, (body, text)
    assert keys(s3, bucket) == ["a", "b"]
    # A well-formed request through the same path works (the raw signer is fine).
    good = b"<Delete><Object><Key>a</Key></Object></Delete>"
    r = signer.request("POST", url, body=good, headers={
        "content-type": "application/xml", "content-md5": content_md5(good)})
    assert r.status_code == 200, r.text
    assert keys(s3, bucket) == ["b"]


# --------------------------------------------------------------------------- keys, ranges, buckets


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert err(ei.value) == (400, "KeyTooLongError")
    # The limit is in UTF-8 bytes: 342 characters of 3 bytes = 1026 bytes.
    long_key = "€" * 342
    assert len(long_key.encode()) == 1026
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=bucket, Key=long_key, Body=b"x")
    assert err(ei.value) == (400, "KeyTooLongError")
    assert keys(s3, bucket) == []
    # Exactly 1024 bytes is fine.
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    assert keys(s3, bucket) == ["k" * 1024]
    assert s3.get_object(Bucket=bucket, Key="k" * 1024)["Body"].read() == b"x"


def test_range_past_end(s3, bucket):
    s3.put_object(Bucket=bucket, Key="short", Body=b"0123456789")
    for rng in ("bytes=10-20", "bytes=100-"):
        with pytest.raises(ClientError) as ei:
            s3.get_object(Bucket=bucket, Key="short", Range=rng)
        assert err(ei.value) == (416, "InvalidRange"), rng
    # A range that starts inside and ends past the end is clamped (not an error).
    got = s3.get_object(Bucket=bucket, Key="short", Range="bytes=5-100")
    assert got["Body"].read() == b"56789"
    assert s3.get_object(Bucket=bucket, Key="short")["Body"].read() == b"0123456789"


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=bucket)
    assert err(ei.value) == (409, "BucketNotEmpty")
    s3.head_bucket(Bucket=bucket)
    assert keys(s3, bucket) == ["x"]
    assert s3.get_object(Bucket=bucket, Key="x")["Body"].read() == b"x"


def test_bucket_with_only_an_upload(s3, bucket):
    """An in-progress multipart upload keeps the bucket's data; the bucket must not vanish under it
    silently (S3 refuses with BucketNotEmpty; deleting and aborting the upload is also accepted)."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="pending")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="pending", UploadId=uid, PartNumber=1, Body=b"p")
    try:
        s3.delete_bucket(Bucket=bucket)
    except ClientError as e:
        assert err(e) == (409, "BucketNotEmpty")
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    else:
        s3.create_bucket(Bucket=bucket)
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_missing_key(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="nope")
    assert err(ei.value) == (404, "NoSuchKey")
    assert ei.value.response["Error"].get("Key") in (None, "nope")
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="nope")
    assert err(ei.value)[0] == 404
    assert keys(s3, bucket) == []


def test_missing_bucket(s3):
    name = new_bucket_name("missing")
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=name, Key="k")
    assert err(ei.value) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as ei:
        s3.list_objects_v2(Bucket=name)
    assert err(ei.value) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert err(ei.value) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket=name)
    assert err(ei.value) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as ei:
        s3.create_multipart_upload(Bucket=name, Key="k")
    assert err(ei.value) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket=name)
    assert err(ei.value)[0] == 404
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_invalid_bucket_name(s3):
    for name in ("ab", "UPPERCASE", "under_score", "-leading", "a" * 64):
        with pytest.raises(ClientError) as ei:
            s3.create_bucket(Bucket=name)
        assert err(ei.value) == (400, "InvalidBucketName"), name
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not {"ab", "UPPERCASE", "under_score", "-leading", "a" * 64} & set(names)


def test_upload_part_to_missing_upload(s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="no-such-upload", PartNumber=1, Body=b"x")
    assert err(ei.value) == (404, "NoSuchUpload")
    assert keys(s3, bucket) == []
