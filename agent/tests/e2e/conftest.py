# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the end-to-end tests.

By default a session-wide quarryd (target/release/quarryd, or $QUARRY_E2E_QUARRYD) is started
on free loopback ports with a temporary data dir and fixed root keys; the tests fail (never
skip) when the binary is missing.

Set QUARRY_E2E_ENDPOINT (plus QUARRY_E2E_ACCESS_KEY / QUARRY_E2E_SECRET_KEY) to run the S3
tests against another S3 server instead (e.g. the Ceph peer); the tests that need quarryd
itself (crash test, CLI, admin API) are skipped in that mode only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

_DAEMON: harness.Daemon | None = None
# Daemons a test module runs besides the session's (own config, restarts): a failing test's
# report includes what they logged too. Modules add and remove their own.
EXTRA_DAEMONS: list[harness.Daemon] = []


@dataclass
class S3Env:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    daemon: harness.Daemon | None  # None when testing an external endpoint

    @property
    def is_quarryd(self) -> bool:
        return self.daemon is not None


def pytest_configure(config):
    config.addinivalue_line("markers", "quarryd_only: needs the quarryd binary (not an external endpoint)")


def external_endpoint() -> str | None:
    return os.environ.get("QUARRY_E2E_ENDPOINT") or None


def pytest_collection_modifyitems(config, items):
    # The crash test is the slowest: run it last.
    items.sort(key=lambda item: item.path.name == "crash_test.py")
    if external_endpoint():
        skip = pytest.mark.skip(reason="QUARRY_E2E_ENDPOINT is set: this test needs quarryd itself")
        for item in items:
            if "quarryd_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def aws_env_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("aws")
    harness.isolate_aws_env(d)
    return d


@pytest.fixture(scope="session")
def s3env(tmp_path_factory, aws_env_dir) -> S3Env:
    global _DAEMON
    ext = external_endpoint()
    if ext:
        yield S3Env(
            endpoint=ext.rstrip("/"),
            access_key=os.environ["QUARRY_E2E_ACCESS_KEY"],
            secret_key=os.environ["QUARRY_E2E_SECRET_KEY"],
            region=harness.REGION,
            daemon=None,
        )
        return
    binary = harness.quarryd_binary()
    if not binary.is_file():
        pytest.fail(
            f"quarryd binary missing: {binary} (build it with "
            "`cargo build --release -p quarry-agent --bins`)",
            pytrace=False,
        )
    root = tmp_path_factory.mktemp("quarryd")
    daemon = harness.Daemon(binary=binary, data_dir=root / "data-dir", log_path=root / "quarryd.log")
    try:
        daemon.start(timeout=60)
    except harness.DaemonError as e:
        daemon.kill()
        pytest.fail(str(e), pytrace=False)
    _DAEMON = daemon
    yield S3Env(
        endpoint=daemon.endpoint,
        access_key=daemon.access_key,
        secret_key=daemon.secret_key,
        region=harness.REGION,
        daemon=daemon,
    )
    _DAEMON = None
    rc = daemon.stop(timeout=30)
    assert rc == 0, (
        f"quarryd did not exit cleanly on SIGTERM: status {rc}\n--- quarryd log tail ---\n"
        f"{daemon.log_tail()}"
    )


@pytest.fixture(scope="session")
def s3(s3env):
    """A boto3 S3 client with SDK defaults (path style, no retries)."""
    return harness.boto3_client(s3env.endpoint, s3env.access_key, s3env.secret_key)


@pytest.fixture(scope="session")
def signer(s3env) -> harness.Signer:
    return harness.Signer(s3env.access_key, s3env.secret_key)


def new_bucket_name(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket(s3):
    """A fresh empty bucket, emptied and deleted afterwards."""
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    yield name
    harness.delete_bucket_fully(s3, name)


@pytest.fixture
def bucket2(s3):
    name = new_bucket_name("e2e2")
    s3.create_bucket(Bucket=name)
    yield name
    harness.delete_bucket_fully(s3, name)


@pytest.fixture(scope="session")
def quarryd(s3env) -> harness.Daemon:
    if s3env.daemon is None:
        pytest.skip("needs quarryd")
    return s3env.daemon


@dataclass
class Aws:
    """Runs the aws CLI (v1) against the endpoint with env credentials."""

    s3env: S3Env

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.s3env.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.s3env.secret_key
        env["AWS_DEFAULT_REGION"] = self.s3env.region
        env["AWS_PAGER"] = ""
        return env

    def run(self, *args: str, check: bool = True, input: bytes | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        argv = ["aws", "--endpoint-url", self.s3env.endpoint, *args]
        if "--output" not in args:
            argv += ["--output", "json"]
        p = subprocess.run(argv, env=self.env(), input=input, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(
                f"`{' '.join(argv)}` exited {p.returncode}\n--- stdout ---\n"
                f"{p.stdout.decode(errors='replace')}\n--- stderr ---\n{p.stderr.decode(errors='replace')}"
            )
        return p

    def json(self, *args: str):
        import json

        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else None


@pytest.fixture(scope="session")
def aws(s3env) -> Aws:
    return Aws(s3env)


# Attach the daemon's log output produced during a failing test to its report.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._quarryd_log_offset = _DAEMON.log_size() if _DAEMON else None
    item._extra_log_offsets = {id(d): d.log_size() for d in EXTRA_DAEMONS}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    offset = getattr(item, "_quarryd_log_offset", None)
    if _DAEMON is not None and offset is not None:
        log = _DAEMON.log_since(offset)
        if log.strip():
            report.sections.append(("quarryd (session daemon) log during this test", log))
    offsets = getattr(item, "_extra_log_offsets", {})
    for d in EXTRA_DAEMONS:
        log = d.log_since(offsets.get(id(d), 0))
        if log.strip():
            report.sections.append((f"quarryd ({d.log_path}) log during this test", log))
