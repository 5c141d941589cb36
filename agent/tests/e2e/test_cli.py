# SPDX-License-Identifier: Apache-2.0
"""Smoke test of the `quarry` CLI against the session's quarryd."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.quarryd_only


@pytest.fixture(scope="module")
def cli(quarryd):
    binary = harness.quarry_cli_binary()
    if not binary.is_file():
        pytest.fail(f"quarry CLI binary missing: {binary} (cargo build --release -p quarry-agent --bins)",
                    pytrace=False)
    env = dict(os.environ)
    env.update(
        QUARRY_ENDPOINT=quarryd.endpoint,
        QUARRY_ADMIN_URL=quarryd.admin_url,
        QUARRY_ADMIN_TOKEN=quarryd.admin_token,
        AWS_ACCESS_KEY_ID=quarryd.access_key,
        AWS_SECRET_ACCESS_KEY=quarryd.secret_key,
        NO_COLOR="1",
    )

    def run(*args: str, check: bool = True, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
        p = subprocess.run([str(binary), *args], env=env, capture_output=True, cwd=cwd, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"`quarry {' '.join(args)}` exited {p.returncode}\n--- stdout ---\n"
                                 f"{p.stdout.decode(errors='replace')}\n--- stderr ---\n"
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    run.binary, run.env = binary, env
    return run


def run_in_pty(argv: list[str], env: dict[str, str], cwd=None, timeout: float = 120) -> tuple[int, bytes]:
    """Run with stdout/stderr on a pseudo-terminal (progress bars draw only on a terminal)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            if cwd:
                os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(out)


def test_cli_help(cli):
    out = cli("--help").stdout.decode()
    for sub in ("status", "ls", "put", "get", "rm"):
        assert re.search(rf"^\s+{sub}\b", out, re.M), out


def test_cli_status(cli, s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"12345")
    out = cli("status").stdout.decode()
    assert "quarryd" in out and "127.0.0.1" in out, out
    raw = json.loads(cli("status", "--json").stdout)
    assert raw["store"]["objects"] >= 1 and raw["store"]["buckets"] >= 1, raw
    # The read engine the store chose at start, and its settings.
    assert raw["read_engine"]["engine"] in ("io_uring", "pread"), raw
    assert "read engine     " + raw["read_engine"]["engine"] in out, out


def test_cli_status_bad_token(cli):
    env = dict(cli.env, QUARRY_ADMIN_TOKEN="wrong-token")
    p = subprocess.run([str(cli.binary), "status"], env=env, capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"401" in p.stderr or b"403" in p.stderr, p.stderr


def test_cli_put_ls_get_rm(cli, s3, bucket, tmp_path):
    size = 48 * 1024 * 1024 + 11
    src = tmp_path / "big.bin"
    data = os.urandom(size)
    src.write_bytes(data)

    # put: a large file shows a progress bar on a terminal.
    code, out = run_in_pty([str(cli.binary), "put", str(src), f"{bucket}/dir/big.bin"], cli.env)
    text = out.decode(errors="replace")
    assert code == 0, text
    assert re.search(r"put .*(MiB|MB|KiB|kB|B)\s*/\s*\S+", text), f"no progress bar in: {text!r}"
    assert "uploaded" in text and str(size) in text, text
    head = s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ContentLength"] == size and head["ETag"] == harness.md5_etag(data)

    # put without a terminal: no bar, just the summary.
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file\n")
    p = cli("put", str(small), f"{bucket}/")
    assert b"uploaded" in p.stdout
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == b"small file\n"

    # ls
    out = cli("ls").stdout.decode()
    assert bucket in out.split(), out
    out = cli("ls", bucket).stdout.decode()
    assert re.search(r"PRE\s+dir/$", out, re.M) and re.search(r"\b11\s+.*small\.txt$", out, re.M), out
    out = cli("ls", "--recursive", bucket).stdout.decode()
    assert re.search(rf"\b{size}\s+.*dir/big\.bin$", out, re.M), out
    out = cli("ls", f"{bucket}/dir/").stdout.decode()
    assert "big.bin" in out and "small.txt" not in out, out

    # get: to a named file, to the default name, to stdout.
    dst = tmp_path / "back.bin"
    cli("get", f"{bucket}/dir/big.bin", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    cli("get", f"{bucket}/small.txt", cwd=workdir)
    assert (workdir / "small.txt").read_bytes() == b"small file\n"
    assert cli("get", f"{bucket}/small.txt", "-").stdout == b"small file\n"

    # get of a missing key fails with the S3 error and creates no file.
    p = cli("get", f"{bucket}/missing", str(tmp_path / "missing"), check=False)
    assert p.returncode != 0 and b"NoSuchKey" in p.stderr, p.stderr
    assert not (tmp_path / "missing").exists()

    # rm
    cli("rm", f"{bucket}/dir/big.bin")
    cli("rm", f"{bucket}/small.txt")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_cli_bad_credentials(cli, bucket, tmp_path):
    env = dict(cli.env, AWS_SECRET_ACCESS_KEY="wrong")
    f = tmp_path / "f"
    f.write_bytes(b"x")
    p = subprocess.run([str(cli.binary), "put", str(f), f"{bucket}/f"], env=env, capture_output=True, timeout=60)
    assert p.returncode != 0 and b"SignatureDoesNotMatch" in p.stderr, p.stderr
