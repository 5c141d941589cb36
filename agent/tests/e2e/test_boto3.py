# SPDX-License-Identifier: Apache-2.0
"""boto3 (default settings: CRC32 checksums on uploads) against the endpoint."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import time
import zlib

import pytest
import requests
from botocore.exceptions import ClientError

import harness
from conftest import new_bucket_name

MiB = 1024 * 1024


def err(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


# --------------------------------------------------------------------------- buckets, objects


def test_bucket_lifecycle(s3):
    name = new_bucket_name("b3")
    s3.create_bucket(Bucket=name)
    try:
        s3.head_bucket(Bucket=name)
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
        s3.delete_bucket(Bucket=name)
        with pytest.raises(ClientError) as ei:
            s3.head_bucket(Bucket=name)
        assert err(ei.value)[0] == 404
        assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        harness.delete_bucket_fully(s3, name)


def test_put_get_head_delete(s3, bucket):
    data = os.urandom(123_457)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data, ContentType="application/x-foo",
                        Metadata={"purpose": "e2e", "Mixed-Case": "Value"})
    assert put["ETag"] == harness.md5_etag(data)

    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == put["ETag"]
    assert head["ContentType"] == "application/x-foo"
    assert head["Metadata"] == {"purpose": "e2e", "mixed-case": "Value"}
    assert isinstance(head["LastModified"], dt.datetime)

    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]

    # Overwrite replaces content and metadata.
    s3.put_object(Bucket=bucket, Key="obj", Body=b"v2")
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == b"v2"
    assert got["Metadata"] == {}

    s3.delete_object(Bucket=bucket, Key="obj")
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="obj")
    assert err(ei.value) == (404, "NoSuchKey")
    # Deleting a missing key is not an error in S3.
    s3.delete_object(Bucket=bucket, Key="obj")


def test_empty_object_and_odd_keys(s3, bucket):
    keys = ["empty", "with space", "plus+sign", "unicodé/ключ/鍵", "a/b/../c", "semi;colon=eq&amp",
            "trailing/", "~tilde*star'quote(paren)", "percent%20encoded"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode() if k != "empty" else b"")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda s: s.encode())
    for k in keys:
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert got == (k.encode() if k != "empty" else b""), k
    assert s3.head_object(Bucket=bucket, Key="empty")["ETag"] == harness.md5_etag(b"")


def test_empty_put_keeps_connection_usable(s3env, bucket):
    """botocore sends `Expect: 100-continue` on every PUT, also with an empty body. If the server
    answers such a request without an interim 100 Continue and keeps the connection open, botocore
    (all versions to date, boto/botocore#3755) parses the *next* Expect response on that pooled
    connection against a stale status line: no headers (ETag missing), then a hang until the read
    timeout and a silent retry (a double write). S3 always sends 100 Continue."""
    c = harness.boto3_client(s3env.endpoint, s3env.access_key, s3env.secret_key, read_timeout=5,
                             max_pool_connections=1)
    for i in range(3):
        r = c.put_object(Bucket=bucket, Key=f"empty{i}", Body=b"")
        assert r.get("ETag") == harness.md5_etag(b""), r["ResponseMetadata"]
        data = os.urandom(1000 + i)
        r = c.put_object(Bucket=bucket, Key=f"after{i}", Body=data)
        assert r.get("ETag") == harness.md5_etag(data), r["ResponseMetadata"]
        assert r["ResponseMetadata"]["RetryAttempts"] == 0
        uid = c.create_multipart_upload(Bucket=bucket, Key=f"mp{i}")["UploadId"]
        p = c.upload_part(Bucket=bucket, Key=f"mp{i}", UploadId=uid, PartNumber=1, Body=b"")
        assert p.get("ETag") == harness.md5_etag(b""), p["ResponseMetadata"]
        p = c.upload_part(Bucket=bucket, Key=f"mp{i}", UploadId=uid, PartNumber=2, Body=data)
        assert p.get("ETag") == harness.md5_etag(data), p["ResponseMetadata"]
        c.abort_multipart_upload(Bucket=bucket, Key=f"mp{i}", UploadId=uid)


def test_default_checksum_upload_is_verified(s3, bucket):
    """botocore >= 1.36 sends x-amz-checksum-crc32 on PutObject by default; also try SHA256."""
    seen = {}

    def capture(request, **_):
        for k, v in request.headers.items():
            seen[k.lower()] = v.decode() if isinstance(v, bytes) else v

    s3.meta.events.register("before-send.s3.PutObject", capture)
    try:
        data = os.urandom(100_000)
        s3.put_object(Bucket=bucket, Key="crc", Body=data)
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", capture)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert seen.get("x-amz-checksum-crc32") == crc, seen
    assert s3.get_object(Bucket=bucket, Key="crc")["Body"].read() == data

    data2 = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="sha", Body=data2, ChecksumAlgorithm="SHA256")
    assert s3.get_object(Bucket=bucket, Key="sha")["Body"].read() == data2


@pytest.mark.parametrize("mode,trailer", [("signed", False), ("signed", True), ("unsigned", True)],
                         ids=["signed-chunks", "signed-chunks+crc32-trailer", "unsigned+crc32-trailer"])
def test_aws_chunked_upload(s3env, s3, signer, bucket, mode, trailer):
    """Content-Encoding: aws-chunked, as other SDKs send it (botocore only uses it over TLS)."""
    data = os.urandom(200_000 + 123)
    url = f"{s3env.endpoint}/{bucket}/chunked-{mode}-{trailer}"
    r = signer.chunked_put(url, data, chunk_size=64 * 1024, mode=mode, trailer_checksum=trailer)
    assert r.status_code == 200, r.text
    assert r.headers.get("ETag") == harness.md5_etag(data)
    got = s3.get_object(Bucket=bucket, Key=url.rsplit("/", 1)[1])
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data
    # The aws-chunked framing must not leak into the stored object's metadata.
    assert got.get("ContentEncoding") in (None, "")


def test_upload_download_file_multipart(s3, bucket, tmp_path):
    from boto3.s3.transfer import TransferConfig

    size = 21 * MiB + 5
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "mp", Config=cfg)
    parts = [data[i:i + 8 * MiB] for i in range(0, size, 8 * MiB)]
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert head["ETag"] == harness.multipart_etag(parts)
    assert head["ContentLength"] == size

    dst = tmp_path / "dst"
    s3.download_file(bucket, "mp", str(dst), Config=cfg)  # ranged GETs in parallel
    assert dst.read_bytes() == data

    buf = io.BytesIO()
    s3.download_fileobj(bucket, "mp", buf)
    assert buf.getvalue() == data


def test_range_get(s3, bucket):
    data = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    cases = {"bytes=0-9": data[0:10], "bytes=10-": data[10:], "bytes=-10": data[-10:],
             "bytes=5000-99999": data[5000:], "bytes=0-0": data[:1]}
    for rng, want in cases.items():
        got = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert got["Body"].read() == want, rng
        assert got["ContentLength"] == len(want), rng
        start = len(data) - len(want) if rng.startswith("bytes=-") else int(rng[6:].split("-")[0])
        assert got["ContentRange"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}", rng
    head = s3.head_object(Bucket=bucket, Key="r", Range="bytes=1-2")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == 2


def test_copy_object(s3, bucket, bucket2):
    data = os.urandom(70_000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, Metadata={"x": "1"}, ContentType="text/csv")
    res = s3.copy_object(Bucket=bucket2, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert harness.unquote_etag(res["CopyObjectResult"]["ETag"]) == harness.md5_etag(data)
    got = s3.get_object(Bucket=bucket2, Key="dst")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"x": "1"} and got["ContentType"] == "text/csv"

    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"y": "2"}, ContentType="text/plain")
    head = s3.head_object(Bucket=bucket, Key="dst2")
    assert head["Metadata"] == {"y": "2"} and head["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=bucket, Key="dst2")["Body"].read() == data

    # Copy of a missing source.
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=bucket, Key="dst3", CopySource=f"{bucket}/nope")
    assert err(ei.value) == (404, "NoSuchKey")
    assert "dst3" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


# --------------------------------------------------------------------------- presigned URLs


def test_presigned_get(s3, bucket):
    data = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="pre/get me", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/get me"},
                                    ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == data
    assert r.headers["ETag"] == harness.md5_etag(data)

    r = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert r.status_code == 206 and r.content == data[:100]

    # A tampered signature is refused.
    sig_start = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    bad = url[:sig_start] + ("0" if url[sig_start] != "0" else "1") + url[sig_start + 1:]
    r = requests.get(bad, timeout=30)
    status, code, body = harness.s3_error(r)
    assert (status, code) == (403, "SignatureDoesNotMatch"), body

    # A presigned URL for another key does not work for this one.
    other = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/other"},
                                      ExpiresIn=300)
    r = requests.get(other.replace("pre/other", "pre/get%20me"), timeout=30)
    assert r.status_code == 403


def test_presigned_expired(s3, bucket):
    s3.put_object(Bucket=bucket, Key="exp", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "exp"}, ExpiresIn=1)
    time.sleep(2.5)
    r = requests.get(url, timeout=30)
    status, code, body = harness.s3_error(r)
    assert (status, code) == (403, "AccessDenied"), body


def test_presigned_put(s3, bucket):
    data = os.urandom(40_000)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/put"},
                                    ExpiresIn=300)
    r = requests.put(url, data=data, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get("ETag") == harness.md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="pre/put")["Body"].read() == data

    # The presigned PUT URL does not allow a GET or a PUT to another key.
    r = requests.get(url, timeout=30)
    assert r.status_code == 403
    r = requests.put(url.replace("pre/put", "pre/evil"), data=b"evil", timeout=30)
    assert r.status_code == 403
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["pre/put"]

    # urllib works too (no chunked encoding, explicit length).
    import urllib.request

    url2 = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/urllib"},
                                     ExpiresIn=300)
    req = urllib.request.Request(url2, data=b"via urllib", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    assert s3.get_object(Bucket=bucket, Key="pre/urllib")["Body"].read() == b"via urllib"


# --------------------------------------------------------------------------- conditional requests


def _status_code(s3call, **kw):
    """HTTP status and error code (None on success) of a GET/HEAD."""
    try:
        r = s3call(**kw)
        if "Body" in r:
            r["Body"].read()
        return r["ResponseMetadata"]["HTTPStatusCode"], None
    except ClientError as e:
        return err(e)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_conditional_requests(s3, bucket, method):
    put = s3.put_object(Bucket=bucket, Key="cond", Body=b"conditional body")
    etag = put["ETag"]
    last_mod = s3.head_object(Bucket=bucket, Key="cond")["LastModified"]
    past = last_mod - dt.timedelta(hours=1)
    future = last_mod + dt.timedelta(hours=1)
    call = getattr(s3, method)

    def check(expected_status, expected_code, **cond):
        status, code = _status_code(call, Bucket=bucket, Key="cond", **cond)
        assert status == expected_status, (cond, status, code)
        if expected_code and method == "get_object":
            assert code == expected_code, (cond, status, code)

    check(200, None, IfMatch=etag)
    check(412, "PreconditionFailed", IfMatch='"0123456789abcdef0123456789abcdef"')
    check(304, None, IfNoneMatch=etag)
    check(200, None, IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    check(304, None, IfModifiedSince=future)
    check(200, None, IfModifiedSince=past)
    check(412, "PreconditionFailed", IfUnmodifiedSince=past)
    check(200, None, IfUnmodifiedSince=future)
    # S3/RFC 7232 precedence: If-Match true wins over If-Unmodified-Since false ...
    check(200, None, IfMatch=etag, IfUnmodifiedSince=past)
    # ... and If-None-Match false wins over If-Modified-Since true (-> 304).
    check(304, None, IfNoneMatch=etag, IfModifiedSince=past)
    # The object is still intact.
    assert s3.get_object(Bucket=bucket, Key="cond")["Body"].read() == b"conditional body"


# --------------------------------------------------------------------------- listings


LIST_KEYS = sorted(["a/1", "a/2", "a/b/3", "a/b/4", "b/1", "c", "d", "e/f/g", "e/h", "z"])


@pytest.fixture
def listing_bucket(s3, bucket):
    for k in LIST_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_v2_prefix_delimiter(s3, listing_bucket):
    b = listing_bucket
    r = s3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == LIST_KEYS
    assert r["KeyCount"] == len(LIST_KEYS) and not r["IsTruncated"]
    for o in r["Contents"]:
        assert o["Size"] == len(o["Key"]) and o["ETag"] == harness.md5_etag(o["Key"].encode())

    r = s3.list_objects_v2(Bucket=b, Prefix="a/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2", "a/b/3", "a/b/4"]

    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d", "z"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/", "e/"]
    assert r["KeyCount"] == 6

    r = s3.list_objects_v2(Bucket=b, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]

    r = s3.list_objects_v2(Bucket=b, Prefix="nothing")
    assert "Contents" not in r and r["KeyCount"] == 0


def test_list_v2_pagination(s3, listing_bucket):
    b = listing_bucket
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, MaxKeys=3, **kw)
        pages += 1
        keys = [o["Key"] for o in r.get("Contents", [])]
        assert len(keys) <= 3 and r["KeyCount"] == len(keys) and r["MaxKeys"] == 3
        seen += keys
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            break
        token = r["NextContinuationToken"]
        assert pages < 20
    assert seen == LIST_KEYS and pages == 4

    r = s3.list_objects_v2(Bucket=b, StartAfter="b/1")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d", "e/f/g", "e/h", "z"]
    r = s3.list_objects_v2(Bucket=b, StartAfter="b", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["b/1", "c"] and r["IsTruncated"]

    # Common prefixes count towards MaxKeys and paginate too.
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, Delimiter="/", MaxKeys=2, **kw)
        items = [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert 1 <= len(items) <= 2, items
        seen += items
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert sorted(seen) == ["a/", "b/", "c", "d", "e/", "z"]

    # The paginator agrees.
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=b, PaginationConfig={"PageSize": 4}) for o in page.get("Contents", [])]
    assert keys == LIST_KEYS

    # MaxKeys=0 returns nothing.
    r = s3.list_objects_v2(Bucket=b, MaxKeys=0)
    assert r["KeyCount"] == 0 and "Contents" not in r


def test_list_v1_marker(s3, listing_bucket):
    b = listing_bucket
    r = s3.list_objects(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == LIST_KEYS and not r["IsTruncated"]

    r = s3.list_objects(Bucket=b, Marker="c")
    assert [o["Key"] for o in r["Contents"]] == ["d", "e/f/g", "e/h", "z"]

    seen, marker = [], ""
    for _ in range(20):
        r = s3.list_objects(Bucket=b, MaxKeys=4, Marker=marker)
        keys = [o["Key"] for o in r.get("Contents", [])]
        seen += keys
        if not r["IsTruncated"]:
            break
        marker = r.get("NextMarker", keys[-1])
    assert seen == LIST_KEYS

    r = s3.list_objects(Bucket=b, Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"]
    assert [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])] \
        == ["a/", "b/"]
    assert r["NextMarker"] == "b/"
    r = s3.list_objects(Bucket=b, Delimiter="/", Marker=r["NextMarker"])
    assert [o["Key"] for o in r["Contents"]] == ["c", "d", "z"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["e/"]


def test_delete_objects(s3, listing_bucket):
    b = listing_bucket
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a/1"}, {"Key": "c"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a/1", "c", "missing"]
    assert not r.get("Errors")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
    assert left == [k for k in LIST_KEYS if k not in ("a/1", "c")]

    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in left], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors")
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0


# --------------------------------------------------------------------------- multipart, low level


def test_multipart_low_level(s3, bucket):
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB + 1), os.urandom(1234)
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="copy-src", Body=src)

    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/obj", ContentType="application/x-mp",
                                    Metadata={"m": "v"})
    uid = up["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp/obj", uid)]

    e1 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert e1 == harness.md5_etag(p1) and e2 == harness.md5_etag(p2)
    # Part 3 is a ranged copy of another object, part 4 a whole-object copy; part 5 is small.
    c3 = s3.upload_part_copy(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=3,
                             CopySource={"Bucket": bucket, "Key": "copy-src"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")["CopyPartResult"]["ETag"]
    c4 = s3.upload_part_copy(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=4,
                             CopySource=f"{bucket}/copy-src")["CopyPartResult"]["ETag"]
    c3, c4 = harness.unquote_etag(c3), harness.unquote_etag(c4)
    assert c3 == harness.md5_etag(src[:5 * MiB]) and c4 == harness.md5_etag(src)
    e5 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=5, Body=p3)["ETag"]
    # Re-uploading a part replaces it.
    e2 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=2, Body=p2)["ETag"]

    parts = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts["Parts"]] == [
        (1, e1, len(p1)), (2, e2, len(p2)), (3, c3, 5 * MiB), (4, c4, len(src)), (5, e5, len(p3))]
    page = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["IsTruncated"]
    page = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumberMarker=page["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in page["Parts"]] == [3, 4, 5]

    # Not visible before completion.
    assert s3.list_objects_v2(Bucket=bucket, Prefix="mp/")["KeyCount"] == 0

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/obj", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in
                                   [(1, e1), (2, e2), (3, c3), (4, c4), (5, e5)]]})
    pieces = [p1, p2, src[:5 * MiB], src, p3]
    assert done["ETag"] == harness.multipart_etag(pieces)
    whole = b"".join(pieces)
    got = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert got["ETag"] == done["ETag"] and got["ContentLength"] == len(whole)
    assert got["ContentType"] == "application/x-mp" and got["Metadata"] == {"m": "v"}
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(whole).digest()
    rng = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert rng["Body"].read() == whole[5 * MiB - 10:5 * MiB + 10]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    with pytest.raises(ClientError) as ei:
        s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid)
    assert err(ei.value) == (404, "NoSuchUpload")


def test_multipart_subset_of_parts(s3, bucket):
    """Completing with a subset of the uploaded parts uses just those (in order)."""
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(100)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="sub")["UploadId"]
    etags = {}
    for n, p in [(1, p1), (2, p2), (3, p3)]:
        etags[n] = s3.upload_part(Bucket=bucket, Key="sub", UploadId=uid, PartNumber=n, Body=p)["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="sub", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 3, "ETag": etags[3]}]})
    assert done["ETag"] == harness.multipart_etag([p1, p3])
    assert s3.get_object(Bucket=bucket, Key="sub")["Body"].read() == p1 + p3


def test_multipart_abort(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"old")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="keep")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="keep", UploadId=uid, PartNumber=1, Body=os.urandom(5 * MiB))
    other = s3.create_multipart_upload(Bucket=bucket, Key="other")["UploadId"]
    ups = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    assert ups == {uid, other}

    s3.abort_multipart_upload(Bucket=bucket, Key="keep", UploadId=uid)
    ups = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert ups == [other]
    with pytest.raises(ClientError) as ei:
        s3.list_parts(Bucket=bucket, Key="keep", UploadId=uid)
    assert err(ei.value) == (404, "NoSuchUpload")
    with pytest.raises(ClientError) as ei:
        s3.upload_part(Bucket=bucket, Key="keep", UploadId=uid, PartNumber=2, Body=b"x")
    assert err(ei.value) == (404, "NoSuchUpload")
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="keep", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
    assert err(ei.value) == (404, "NoSuchUpload")
    # The existing object was never touched.
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"old"
    s3.abort_multipart_upload(Bucket=bucket, Key="other", UploadId=other)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_multipart_invalid_parts(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    big1, big2, small = os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1024)
    e1 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1, Body=big1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=2, Body=big2)["ETag"]
    e3 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=3, Body=small)["ETag"]
    e4 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=4, Body=small)["ETag"]
    # Wrong ETag for a part.
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert err(ei.value) == (400, "InvalidPart")
    # A part that was never uploaded.
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 7, "ETag": e1}]})
    assert err(ei.value) == (400, "InvalidPart")
    # Parts out of order (all big enough).
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert err(ei.value) == (400, "InvalidPartOrder")
    # A non-last part below 5 MiB.
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 3, "ETag": e3}, {"PartNumber": 4, "ETag": e4}]})
    assert err(ei.value) == (400, "EntityTooSmall")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # The upload survives failed completions; a valid completion works.
    done = s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}, {"PartNumber": 4, "ETag": e4}]})
    assert done["ETag"] == harness.multipart_etag([big1, big2, small])
    assert s3.get_object(Bucket=bucket, Key="bad")["Body"].read() == big1 + big2 + small
