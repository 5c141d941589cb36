# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the end-to-end tests: run quarryd, build S3 clients, sign raw requests.

Used by conftest.py (pytest) and by crash_test.py when it runs standalone.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_QUARRYD = REPO_ROOT / "target" / "release" / "quarryd"
DEFAULT_QUARRY_CLI = REPO_ROOT / "target" / "release" / "quarry"
REGION = "us-east-1"

# Fixed root credentials the tests hand to quarryd through its environment.
E2E_ACCESS_KEY = "QUARRYE2EACCESSKEY01"
E2E_SECRET_KEY = "quarry-e2e-secret-key-000000000000000000"
E2E_ADMIN_TOKEN = "quarry-e2e-admin-token"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quarryd_binary() -> Path:
    return Path(os.environ.get("QUARRY_E2E_QUARRYD", DEFAULT_QUARRYD))


def quarry_cli_binary() -> Path:
    return Path(os.environ.get("QUARRY_E2E_QUARRY_CLI", DEFAULT_QUARRY_CLI))


class DaemonError(RuntimeError):
    pass


@dataclass
class Daemon:
    """One quarryd process (restartable on the same data dir)."""

    binary: Path
    data_dir: Path
    log_path: Path
    access_key: str = E2E_ACCESS_KEY
    secret_key: str = E2E_SECRET_KEY
    admin_token: str = E2E_ADMIN_TOKEN
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    s3_port: int = 0
    admin_port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            QUARRY_ROOT_ACCESS_KEY=self.access_key,
            QUARRY_ROOT_SECRET_KEY=self.secret_key,
            QUARRY_ADMIN_TOKEN=self.admin_token,
        )
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        return env

    def spawn(self, new_ports: bool = True) -> None:
        if not self.binary.is_file():
            raise DaemonError(
                f"quarryd binary not found at {self.binary}; build it with "
                "`cargo build --release -p quarry-agent --bins` (or set QUARRY_E2E_QUARRYD)"
            )
        if self.proc is not None and self.proc.poll() is None:
            raise DaemonError("quarryd is already running")
        if new_ports or not self.s3_port:
            self.s3_port, self.admin_port = free_port(), free_port()
            while self.admin_port == self.s3_port:
                self.admin_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(self.binary)]
        if "--config" not in self.extra_args:
            # Hermetic: an empty config file (the embedded defaults), never /etc/quarry/quarry.toml.
            config = self.data_dir.parent / "quarry-e2e.toml"
            if not config.exists():
                config.write_text("# quarryd config for the e2e tests: embedded defaults\n")
            argv += ["--config", str(config)]
        argv += [
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.s3_port}",
            "--admin-listen",
            f"127.0.0.1:{self.admin_port}",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} spawn: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env(),
                cwd=str(self.data_dir.parent),
            )

    def health(self, timeout: float = 0.5) -> int | None:
        """HTTP status of GET /health, or None if nothing answered."""
        try:
            with urllib.request.urlopen(f"{self.admin_url}/health", timeout=timeout) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, urllib.error.URLError):
            return None

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until /health answers 200; return the seconds it took."""
        t0 = time.monotonic()
        while True:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise DaemonError(
                    f"quarryd exited with status {rc} before it became ready\n"
                    f"--- quarryd log tail ---\n{self.log_tail()}"
                )
            if self.health() == 200:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise DaemonError(
                    f"quarryd did not answer 200 on {self.admin_url}/health within {timeout}s\n"
                    f"--- quarryd log tail ---\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def start(self, timeout: float = 30.0, new_ports: bool = True) -> float:
        self.spawn(new_ports=new_ports)
        return self.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL, and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit status (SIGKILLs and raises on timeout)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DaemonError(
                f"quarryd did not exit within {timeout}s of SIGTERM (killed)\n"
                f"--- quarryd log tail ---\n{self.log_tail()}"
            )

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, limit: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = "...(truncated)...\n" + text[-limit:]
        return text

    def log_tail(self, limit: int = 8000) -> str:
        return self.log_since(max(0, self.log_size() - limit), limit)


# --------------------------------------------------------------------------- clients


def write_aws_config(path: Path) -> Path:
    """An AWS config file that only forces path-style addressing (all else: SDK defaults)."""
    path.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    return path


def isolate_aws_env(config_dir: Path) -> None:
    """Keep the user's ~/.aws and AWS_* settings out of the tests (SDK defaults otherwise)."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            del os.environ[var]
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["AWS_CONFIG_FILE"] = str(write_aws_config(config_dir / "config"))
    creds = config_dir / "credentials"
    creds.write_text("")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_DEFAULT_REGION"] = REGION


def boto3_client(endpoint: str, access_key: str | None, secret_key: str | None, *,
                 unsigned: bool = False, retries: int = 1, connect_timeout: float = 10,
                 read_timeout: float = 120, **config_kwargs):
    import boto3
    import botocore
    from botocore.config import Config

    cfg = Config(
        region_name=REGION,
        s3={"addressing_style": "path"},
        # total_max_attempts counts the first attempt: 1 = no retries (a hidden retry would mask
        # failures, and re-send writes whose outcome the crash test must know).
        retries={"total_max_attempts": retries, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        signature_version=botocore.UNSIGNED if unsigned else "s3v4",
        **config_kwargs,
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=None if unsigned else access_key,
        aws_secret_access_key=None if unsigned else secret_key,
        config=cfg,
    )


# --------------------------------------------------------------------------- raw SigV4


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


EMPTY_SHA256 = _sha256_hex(b"")


def _uri_encode(s: str, encode_slash: bool) -> str:
    safe = "-_.~" + ("" if encode_slash else "/")
    return urllib.parse.quote(s, safe=safe)


@dataclass
class Signer:
    """A minimal SigV4 signer for hand-built requests (raw bodies, aws-chunked)."""

    access_key: str
    secret_key: str
    region: str = REGION
    service: str = "s3"

    def signing_key(self, date: str) -> bytes:
        k = _hmac(("AWS4" + self.secret_key).encode(), date)
        k = _hmac(k, self.region)
        k = _hmac(k, self.service)
        return _hmac(k, "aws4_request")

    def scope(self, date: str) -> str:
        return f"{date}/{self.region}/{self.service}/aws4_request"

    def sign(self, method: str, url: str, headers: Mapping[str, str], payload_hash: str,
             amz_date: str | None = None) -> tuple[dict[str, str], str, str, str]:
        """Return (headers incl. Authorization, signature, amz_date, scope)."""
        u = urllib.parse.urlsplit(url)
        amz_date = amz_date or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        hdrs = {k.lower(): str(v).strip() for k, v in headers.items()}
        hdrs["host"] = u.netloc
        hdrs["x-amz-date"] = amz_date
        hdrs["x-amz-content-sha256"] = payload_hash
        pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
        canon_query = "&".join(
            f"{_uri_encode(k, True)}={_uri_encode(v, True)}" for k, v in sorted(pairs)
        )
        signed = sorted(hdrs)
        canon_headers = "".join(f"{k}:{' '.join(hdrs[k].split())}\n" for k in signed)
        canon_path = _uri_encode(urllib.parse.unquote(u.path or "/"), False)
        creq = "\n".join(
            [method, canon_path, canon_query, canon_headers, ";".join(signed), payload_hash]
        )
        scope = self.scope(date)
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, _sha256_hex(creq.encode())])
        sig = hmac.new(self.signing_key(date), sts.encode(), hashlib.sha256).hexdigest()
        hdrs["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        return hdrs, sig, amz_date, scope

    def request(self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
                timeout: float = 60):
        """Send a SigV4-signed request with a plain (fully hashed) body."""
        import requests

        hdrs, _, _, _ = self.sign(method, url, headers or {}, _sha256_hex(body))
        return requests.request(method, url, data=body, headers=hdrs, timeout=timeout)

    # aws-chunked ---------------------------------------------------------

    def chunked_put(self, url: str, data: bytes, *, chunk_size: int = 64 * 1024, mode: str = "signed",
                    trailer_checksum: bool = False, headers: Mapping[str, str] | None = None,
                    corrupt_chunk_signature: bool = False, corrupt_trailer: bool = False,
                    timeout: float = 60):
        """PUT `data` with Content-Encoding: aws-chunked.

        mode "signed": STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] (per-chunk signatures);
        mode "unsigned": STREAMING-UNSIGNED-PAYLOAD-TRAILER (always with a CRC32 trailer).
        """
        import requests

        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        if corrupt_trailer:
            crc = base64.b64encode(((zlib.crc32(data) ^ 1) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
        hdrs = dict(headers or {})
        hdrs["content-encoding"] = "aws-chunked"
        hdrs["x-amz-decoded-content-length"] = str(len(data))
        chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
        if mode == "unsigned":
            trailer_checksum = True
            payload_mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        elif trailer_checksum:
            payload_mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
        else:
            payload_mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        if trailer_checksum:
            hdrs["x-amz-trailer"] = "x-amz-checksum-crc32"

        def build(seed_sig: str, amz_date: str, scope: str) -> bytes:
            out = bytearray()
            prev = seed_sig
            key = self.signing_key(amz_date[:8])
            for chunk in chunks + [b""]:
                if mode == "unsigned":
                    out += f"{len(chunk):x}\r\n".encode()
                else:
                    sts = "\n".join([
                        "AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
                        _sha256_hex(chunk),
                    ])
                    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
                    if corrupt_chunk_signature and chunk:
                        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
                    prev = sig
                    out += f"{len(chunk):x};chunk-signature={sig}\r\n".encode()
                if chunk:
                    out += chunk + b"\r\n"
            if trailer_checksum:
                trailer_line = f"x-amz-checksum-crc32:{crc}"
                out += (trailer_line + "\r\n").encode()
                if mode != "unsigned":
                    sts = "\n".join([
                        "AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                        _sha256_hex((trailer_line + "\n").encode()),
                    ])
                    tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
                    out += f"x-amz-trailer-signature:{tsig}\r\n".encode()
                out += b"\r\n"
            else:
                out += b"\r\n"
            return bytes(out)

        # The encoded length is part of the signed headers: compute it with a dummy signature
        # (every signature has the same length).
        amz_date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        scope = self.scope(amz_date[:8])
        hdrs["content-length"] = str(len(build("0" * 64, amz_date, scope)))
        signed_hdrs, seed, amz_date, scope = self.sign("PUT", url, hdrs, payload_mode, amz_date)
        body = build(seed, amz_date, scope)
        assert len(body) == int(hdrs["content-length"])
        return requests.put(url, data=body, headers=signed_hdrs, timeout=timeout)


# --------------------------------------------------------------------------- S3 bits


def multipart_etag(parts: list[bytes]) -> str:
    """S3's multipart ETag: md5 of the concatenated binary part md5s, dash, part count."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def unquote_etag(etag: str) -> str:
    """ETags inside XML bodies (CopyObjectResult, CopyPartResult) are quoted by AWS; some servers don't."""
    return f'"{etag.strip(chr(34))}"' if etag else etag


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def s3_error(resp) -> tuple[int, str | None, str]:
    """(HTTP status, S3 error Code or None, body text) of a requests.Response."""
    import xml.etree.ElementTree as ET

    code = None
    text = resp.text
    try:
        root = ET.fromstring(resp.content)
        for el in root.iter():
            if el.tag.split("}")[-1] == "Code":
                code = el.text
                break
    except ET.ParseError:
        pass
    return resp.status_code, code, text


def empty_bucket(client, bucket: str) -> None:
    """Delete every object and abort every multipart upload in `bucket` (best effort)."""
    from botocore.exceptions import ClientError

    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            for i in range(0, len(keys), 1000):
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    except ClientError:
        pass


def delete_bucket_fully(client, bucket: str) -> None:
    from botocore.exceptions import ClientError

    empty_bucket(client, bucket)
    try:
        client.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


def regular_files(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
