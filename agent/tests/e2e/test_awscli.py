# SPDX-License-Identifier: Apache-2.0
"""aws CLI (v1, default settings: botocore's default CRC32 checksums) against the endpoint."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re

import harness
from conftest import new_bucket_name


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_mb_ls_rb(aws, s3):
    name = new_bucket_name("cli")
    aws.run("s3", "mb", f"s3://{name}")
    try:
        out = aws.run("s3", "ls").stdout.decode()
        assert name in out.split(), out
        s3.head_bucket(Bucket=name)
        aws.run("s3", "rb", f"s3://{name}")
        out = aws.run("s3", "ls").stdout.decode()
        assert name not in out.split(), out
    finally:
        harness.delete_bucket_fully(s3, name)


def test_cp_up_down_ls_rm(aws, s3, bucket, tmp_path):
    src = tmp_path / "hello.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    aws.run("s3", "cp", str(src), f"s3://{bucket}/dir/hello.bin")
    out = aws.run("s3", "ls", f"s3://{bucket}/dir/").stdout.decode()
    assert re.search(r"\b300000 hello\.bin$", out, re.M), out

    dst = tmp_path / "back.bin"
    aws.run("s3", "cp", f"s3://{bucket}/dir/hello.bin", str(dst))
    assert dst.read_bytes() == data

    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "dir/hello.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == harness.md5_etag(data)

    aws.run("s3", "rm", f"s3://{bucket}/dir/hello.bin")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_cp_stdin_stdout(aws, bucket):
    data = os.urandom(12 * 1024 * 1024 + 17)  # unknown-length stream: multipart upload
    aws.run("s3", "cp", "-", f"s3://{bucket}/stream.bin", input=data)
    p = aws.run("s3", "cp", f"s3://{bucket}/stream.bin", "-")
    assert hashlib.sha256(p.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_sync_roundtrip(aws, s3, bucket, tmp_path):
    up = tmp_path / "up"
    (up / "sub" / "deeper").mkdir(parents=True)
    files = {
        "a.txt": b"alpha\n",
        "b.bin": os.urandom(1024 * 1024 + 3),
        "empty": b"",
        "sub/c.txt": b"gamma " * 1000,
        "sub/deeper/d.bin": os.urandom(9 * 1024 * 1024),  # above the 8 MiB multipart threshold
        "sub/with space & plus+.txt": b"odd name",
    }
    for rel, data in files.items():
        (up / rel).write_bytes(data)
    aws.run("s3", "sync", str(up), f"s3://{bucket}/tree")

    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {f"tree/{k}": len(v) for k, v in files.items()}

    out = aws.run("s3", "ls", "--recursive", f"s3://{bucket}/tree/").stdout.decode()
    assert len(out.strip().splitlines()) == len(files), out

    down = tmp_path / "down"
    aws.run("s3", "sync", f"s3://{bucket}/tree", str(down))
    cmp = filecmp.dircmp(up, down)
    _assert_same_tree(up, down, files)
    assert not cmp.left_only and not cmp.right_only

    # A second sync uploads nothing; after a change, only the changed file.
    p = aws.run("s3", "sync", str(up), f"s3://{bucket}/tree")
    assert "upload:" not in p.stdout.decode(), p.stdout.decode()
    (up / "a.txt").write_bytes(b"alpha changed, longer\n")
    p = aws.run("s3", "sync", str(up), f"s3://{bucket}/tree")
    uploads = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("upload:")]
    assert len(uploads) == 1 and "a.txt" in uploads[0], p.stdout.decode()

    # --delete removes remote files that are gone locally.
    (up / "b.bin").unlink()
    aws.run("s3", "sync", "--delete", str(up), f"s3://{bucket}/tree")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "tree/b.bin" not in keys and "tree/a.txt" in keys


def _assert_same_tree(a, b, files):
    for rel in files:
        assert (b / rel).is_file(), rel
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_rm_recursive_and_rb(aws, s3, tmp_path):
    name = new_bucket_name("cli")
    aws.run("s3", "mb", f"s3://{name}")
    try:
        for i in range(5):
            s3.put_object(Bucket=name, Key=f"x/{i}", Body=b"%d" % i)
        s3.put_object(Bucket=name, Key="keep", Body=b"k")
        p = aws.run("s3", "rb", f"s3://{name}", check=False)
        assert p.returncode != 0, "rb of a non-empty bucket must fail"
        assert len(s3.list_objects_v2(Bucket=name)["Contents"]) == 6
        aws.run("s3", "rm", "--recursive", f"s3://{name}/x/")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["keep"]
        aws.run("s3", "rb", "--force", f"s3://{name}")
        out = aws.run("s3", "ls").stdout.decode()
        assert name not in out.split()
    finally:
        harness.delete_bucket_fully(s3, name)


def test_multipart_100mib(aws, s3, bucket, tmp_path):
    size = 100 * 1024 * 1024
    src = tmp_path / "big.bin"
    chunk = 8 * 1024 * 1024  # aws cli default multipart_chunksize
    parts = []
    with open(src, "wb") as f:
        left = size
        while left:
            part = os.urandom(min(chunk, left))
            parts.append(part)
            f.write(part)
            left -= len(part)
    expected_etag = harness.multipart_etag(parts)
    del parts

    aws.run("s3", "cp", str(src), f"s3://{bucket}/big.bin")
    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "big.bin")
    assert head["ContentLength"] == size
    assert re.fullmatch(r'"[0-9a-f]{32}-13"', head["ETag"]), head["ETag"]
    assert head["ETag"] == expected_etag

    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("big.bin", size, expected_etag)]

    dst = tmp_path / "big.back"
    aws.run("s3", "cp", f"s3://{bucket}/big.bin", str(dst))
    assert dst.stat().st_size == size
    assert sha256_file(dst) == sha256_file(src)

    # No multipart upload is left behind.
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_range_get(aws, s3, bucket, tmp_path):
    data = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    out = tmp_path / "part"
    meta = aws.json("s3api", "get-object", "--bucket", bucket, "--key", "r.bin",
                    "--range", "bytes=100-1099", str(out))
    assert out.read_bytes() == data[100:1100]
    assert meta["ContentLength"] == 1000
    assert meta["ContentRange"] == "bytes 100-1099/10000"

    meta = aws.json("s3api", "get-object", "--bucket", bucket, "--key", "r.bin",
                    "--range", "bytes=-10", str(out))
    assert out.read_bytes() == data[-10:]
    assert meta["ContentRange"] == "bytes 9990-9999/10000"

    meta = aws.json("s3api", "get-object", "--bucket", bucket, "--key", "r.bin",
                    "--range", "bytes=9000-", str(out))
    assert out.read_bytes() == data[9000:]


def test_metadata(aws, bucket, tmp_path):
    src = tmp_path / "m.txt"
    src.write_bytes(b"metadata test")
    aws.run("s3", "cp", str(src), f"s3://{bucket}/m.txt", "--metadata", "color=blue,Owner-Name=alice",
            "--content-type", "text/plain", "--cache-control", "max-age=60")
    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "m.txt")
    assert head["Metadata"] == {"color": "blue", "owner-name": "alice"}
    assert head["ContentType"] == "text/plain"
    assert head["CacheControl"] == "max-age=60"

    aws.run("s3api", "put-object", "--bucket", bucket, "--key", "p.txt", "--body", str(src),
            "--metadata", json.dumps({"k1": "v1", "k2": "value two"}),
            "--content-type", "application/x-test", "--content-disposition", "attachment")
    head = aws.json("s3api", "head-object", "--bucket", bucket, "--key", "p.txt")
    assert head["Metadata"] == {"k1": "v1", "k2": "value two"}
    assert head["ContentType"] == "application/x-test"
    assert head["ContentDisposition"] == "attachment"


def test_copy(aws, s3, bucket, bucket2, tmp_path):
    data = os.urandom(50_000)
    s3.put_object(Bucket=bucket, Key="orig", Body=data, Metadata={"a": "1"}, ContentType="image/png")

    aws.run("s3", "cp", f"s3://{bucket}/orig", f"s3://{bucket2}/copied")
    got = s3.get_object(Bucket=bucket2, Key="copied")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"a": "1"}
    assert got["ContentType"] == "image/png"

    res = aws.json("s3api", "copy-object", "--bucket", bucket, "--key", "replaced",
                   "--copy-source", f"{bucket}/orig", "--metadata-directive", "REPLACE",
                   "--metadata", "b=2", "--content-type", "text/plain")
    assert harness.unquote_etag(res["CopyObjectResult"]["ETag"]) == harness.md5_etag(data)
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == len(data)
    assert s3.get_object(Bucket=bucket, Key="replaced")["Body"].read() == data
    # The source is untouched.
    assert s3.head_object(Bucket=bucket, Key="orig")["Metadata"] == {"a": "1"}

    # Copy onto itself with REPLACE updates the metadata in place.
    aws.run("s3api", "copy-object", "--bucket", bucket, "--key", "orig", "--copy-source",
            f"{bucket}/orig", "--metadata-directive", "REPLACE", "--metadata", "c=3")
    head = s3.head_object(Bucket=bucket, Key="orig")
    assert head["Metadata"] == {"c": "3"}
    assert s3.get_object(Bucket=bucket, Key="orig")["Body"].read() == data
