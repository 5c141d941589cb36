#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Crash test: SIGKILL quarryd at random moments while writers PUT objects, then check the data.

Writers PUT objects in a loop (single PUTs of random sizes up to a few MiB, multipart uploads,
overwrites of the same keys, some DELETEs) while quarryd is SIGKILLed at random moments
(sometimes during its own startup/recovery) and restarted on the same data dir.

Each writer records, per key, every attempted body (sha256, md5, size) and, after a 200
response only, the acknowledged state. After the cycles, with quarryd restarted once more:

- every key is in a state that is allowed: the last acknowledged one, or one of the writes whose
  outcome was in doubt (issued after that acknowledgement, response lost in a kill);
- every listed object is whole: it was written by the writers, its listed size and ETag match
  what GET returns, its bytes hash to a body that was sent, and single-PUT ETags are its md5;
- after deleting every object and aborting every multipart upload, DATA_DIR/data holds no
  regular files (orphans of killed writes were reclaimed).

Run standalone:  python3 agent/tests/e2e/crash_test.py --cycles 80 [--seed N] [--keep]
Run with pytest: pytest agent/tests/e2e/crash_test.py   (QUARRY_CRASH_CYCLES, QUARRY_CRASH_SEED)
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

MiB = 1024 * 1024
BUCKET = "crash"
ABSENT = "ABSENT"


@dataclass
class Version:
    sha256: str
    md5: str
    size: int
    multipart: bool
    etag: str  # the ETag S3 gives this body as written


@dataclass
class KeyState:
    # Allowed final states: acked state plus every in-doubt write issued after it.
    acked: str = ABSENT  # sha256 or ABSENT
    in_doubt: set[str] = field(default_factory=set)
    ever_acked: bool = False


class Model:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, KeyState] = {}
        self.versions: dict[str, Version] = {}  # sha256 -> version (every attempted body)
        self.attempted: dict[str, set[str]] = {}  # key -> sha256 of every attempted body
        self.stats = dict(put=0, mpu=0, delete=0, acked=0, in_doubt=0, refused=0, errors=0)
        self.unexpected: list[str] = []
        self.unparsed = 0  # 200 responses without headers (botocore could not parse them)

    def attempt(self, key: str, v: Version | None) -> None:
        with self.lock:
            self.keys.setdefault(key, KeyState())
            if v is not None:
                self.versions[v.sha256] = v
                self.attempted.setdefault(key, set()).add(v.sha256)

    def ack(self, key: str, state: str) -> None:
        with self.lock:
            ks = self.keys[key]
            ks.acked, ks.in_doubt, ks.ever_acked = state, set(), True
            self.stats["acked"] += 1

    def doubt(self, key: str, state: str) -> None:
        with self.lock:
            self.keys[key].in_doubt.add(state)
            self.stats["in_doubt"] += 1


class Writer(threading.Thread):
    """Writes to its own key range while the daemon is up; classifies every outcome."""

    def __init__(self, idx: int, model: Model, ctl: "Controller", rng: random.Random, nkeys: int,
                 max_put: int, mpu_share: float, delete_share: float) -> None:
        super().__init__(name=f"writer-{idx}", daemon=True)
        self.idx, self.model, self.ctl, self.rng = idx, model, ctl, rng
        self.keys = [f"w{idx}/k{n:03d}" for n in range(nkeys)]
        self.max_put, self.mpu_share, self.delete_share = max_put, mpu_share, delete_share
        self.stop = threading.Event()
        self.client = None
        self.client_gen = -1

    def body(self, size: int) -> bytes:
        # Random, and distinct per attempt (tag at the front), cheap to build.
        return os.urandom(16) + self.rng.randbytes(max(0, size - 16)) if size >= 16 else os.urandom(size)

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.ctl.up.wait(timeout=0.1):
                continue
            gen, endpoint = self.ctl.gen, self.ctl.endpoint
            if gen != self.client_gen:
                self.client = harness.boto3_client(endpoint, harness.E2E_ACCESS_KEY, harness.E2E_SECRET_KEY,
                                                   connect_timeout=2, read_timeout=20)
                self.client_gen = gen
            key = self.rng.choice(self.keys)
            r = self.rng.random()
            try:
                if r < self.delete_share:
                    self.do_delete(key)
                elif r < self.delete_share + self.mpu_share:
                    self.do_multipart(key)
                else:
                    self.do_put(key)
            except Exception as e:  # noqa: BLE001 - report anything odd
                with self.model.lock:
                    self.model.unexpected.append(f"{key}: writer crashed: {e!r}")
                    self.model.stats["errors"] += 1

    # Outcome classes: ack (200), refused (never reached a server: definitely not applied),
    # in doubt (connection lost mid-request, or a 5xx), error (a 4xx for a valid request: a bug,
    # unless it is NoSuchUpload for an upload that a crash lost - that is in doubt too).
    def classify(self, e: Exception, key: str, op: str) -> str:
        from botocore.exceptions import ClientError, EndpointConnectionError

        if isinstance(e, EndpointConnectionError):
            return "refused"
        if isinstance(e, ClientError):
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = e.response.get("Error", {}).get("Code")
            if status >= 500:
                return "doubt"
            if code == "NoSuchUpload" and op == "mpu":
                return "doubt"
            with self.model.lock:
                self.model.unexpected.append(f"{key}: {op} got HTTP {status} {code}: {e}")
                self.model.stats["errors"] += 1
            return "doubt"
        return "doubt"  # connection reset, read timeout, ...

    def check_etag(self, key: str, op: str, resp: dict, v: Version) -> bool:
        """A 200 must carry the body's ETag. One without any ETag is a response botocore could not
        parse (see test_boto3.py::test_empty_put_keeps_connection_usable): the write is then only
        in doubt, not acknowledged."""
        etag = resp.get("ETag")
        if etag == v.etag:
            return True
        if etag is None:
            with self.model.lock:
                self.model.unparsed += 1
            self.model.doubt(key, v.sha256)
            return False
        with self.model.lock:  # acknowledged, but with a wrong ETag
            self.model.unexpected.append(f"{key}: {op} answered ETag {etag}, expected {v.etag}")
        return True

    def do_put(self, key: str) -> None:
        size = self.rng.choice([0, 1, self.rng.randrange(1, 64 * 1024), self.rng.randrange(1, self.max_put + 1)])
        data = self.body(size)
        v = Version(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), size, False,
                    f'"{hashlib.md5(data).hexdigest()}"')
        self.model.attempt(key, v)
        self.model.stats["put"] += 1
        try:
            resp = self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        except Exception as e:  # noqa: BLE001
            outcome = self.classify(e, key, "put")
            if outcome != "refused":
                self.model.doubt(key, v.sha256)
            else:
                self.model.stats["refused"] += 1
            return
        if not self.check_etag(key, "PUT", resp, v):
            return
        self.model.ack(key, v.sha256)

    def do_multipart(self, key: str) -> None:
        nparts = self.rng.randint(1, 3)
        parts = [self.body(5 * MiB) for _ in range(nparts - 1)] + [self.body(self.rng.randrange(1, MiB))]
        whole = b"".join(parts)
        v = Version(hashlib.sha256(whole).hexdigest(), hashlib.md5(whole).hexdigest(), len(whole), True,
                    harness.multipart_etag(parts))
        self.model.stats["mpu"] += 1
        c = self.client
        completing = False
        try:
            uid = c.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
            etags = []
            for n, p in enumerate(parts, 1):
                etags.append(c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=p)["ETag"])
            self.model.attempt(key, v)
            completing = True
            resp = c.complete_multipart_upload(
                Bucket=BUCKET, Key=key, UploadId=uid,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
        except Exception as e:  # noqa: BLE001
            outcome = self.classify(e, key, "mpu")
            if completing and outcome != "refused":
                self.model.doubt(key, v.sha256)
            elif outcome == "refused":
                self.model.stats["refused"] += 1
            return
        if not self.check_etag(key, "CompleteMultipartUpload", resp, v):
            return
        self.model.ack(key, v.sha256)

    def do_delete(self, key: str) -> None:
        self.model.attempt(key, None)
        self.model.stats["delete"] += 1
        try:
            self.client.delete_object(Bucket=BUCKET, Key=key)
        except Exception as e:  # noqa: BLE001
            if self.classify(e, key, "delete") != "refused":
                self.model.doubt(key, ABSENT)
            else:
                self.model.stats["refused"] += 1
            return
        self.model.ack(key, ABSENT)


class Controller:
    def __init__(self) -> None:
        self.up = threading.Event()
        self.gen = 0
        self.endpoint = ""


def log(msg: str) -> None:
    print(f"[crash {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class CrashTestFailure(AssertionError):
    pass


def run(cycles: int = 80, seed: int | None = None, workdir: Path | None = None, binary: Path | None = None,
        writers: int = 2, nkeys: int = 12, max_put: int = 3 * MiB, keep: bool = False,
        min_up: float = 0.15, max_up: float = 1.2) -> dict:
    """Run the crash test; raise CrashTestFailure with every problem found. Returns stats."""
    from botocore.exceptions import ClientError

    # urllib3 logs every response it cannot parse, with a traceback: the writers count those.
    logging.getLogger("urllib3.connection").setLevel(logging.ERROR)
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    binary = binary or harness.quarryd_binary()
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="quarry-crash-")) if own_dir else workdir
    data_dir = workdir / "data-dir"
    daemon = harness.Daemon(binary=binary, data_dir=data_dir, log_path=workdir / "quarryd.log")
    log(f"seed={seed} cycles={cycles} writers={writers} workdir={workdir}")
    problems: list[str] = []
    t_start = time.monotonic()

    model = Model()
    ctl = Controller()

    def bring_up(timeout: float = 60) -> float:
        took = daemon.start(timeout=timeout)
        ctl.endpoint = daemon.endpoint
        ctl.gen += 1
        ctl.up.set()
        return took

    try:
        bring_up()
        admin = harness.boto3_client(daemon.endpoint, daemon.access_key, daemon.secret_key)
        admin.create_bucket(Bucket=BUCKET)
        threads = [Writer(i, model, ctl, random.Random(rng.random()), nkeys, max_put, 0.2, 0.08)
                   for i in range(writers)]
        for t in threads:
            t.start()

        startup_times = []
        early_kills = 0
        for cycle in range(cycles):
            if cycle > 0:
                if rng.random() < 0.12:
                    # Kill during startup/recovery, before /health answers.
                    daemon.spawn()
                    time.sleep(rng.uniform(0.0, 0.08))
                    daemon.kill()
                    early_kills += 1
                try:
                    startup_times.append(bring_up())
                except harness.DaemonError as e:
                    raise CrashTestFailure(f"cycle {cycle}: quarryd failed to restart after SIGKILL: {e}")
            time.sleep(rng.uniform(min_up, max_up))
            ctl.up.clear()
            daemon.kill()
            if cycle % 10 == 9:
                log(f"cycle {cycle + 1}/{cycles}: {model.stats}")

        for t in threads:
            t.stop.set()
        for t in threads:
            t.join(timeout=60)
        log(f"cycles done in {time.monotonic() - t_start:.1f}s; early kills {early_kills}; "
            f"max startup {max(startup_times, default=0):.2f}s; {model.stats}")

        # ---------------------------------------------------------------- verification
        bring_up()
        c = harness.boto3_client(daemon.endpoint, daemon.access_key, daemon.secret_key)
        problems += model.unexpected
        if model.unparsed:
            problems.append(
                f"{model.unparsed} PUT/CompleteMultipartUpload responses reached botocore without "
                "headers (no ETag): the Expect: 100-continue interop bug, see "
                "test_boto3.py::test_empty_put_keeps_connection_usable; those writes counted as in doubt")

        listed: dict[str, dict] = {}
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for o in page.get("Contents", []):
                if o["Key"] in listed:
                    problems.append(f"{o['Key']}: listed twice")
                listed[o["Key"]] = o

        for key in sorted(set(model.keys) | set(listed)):
            ks = model.keys.get(key)
            if ks is None:
                problems.append(f"{key}: listed but never written")
                continue
            allowed = {ks.acked} | ks.in_doubt
            try:
                got = c.get_object(Bucket=BUCKET, Key=key)
                body = got["Body"].read()
                state = hashlib.sha256(body).hexdigest()
            except ClientError as e:
                if e.response["Error"]["Code"] != "NoSuchKey":
                    problems.append(f"{key}: GET failed: {e}")
                    continue
                got, body, state = None, b"", ABSENT
            if state not in allowed:
                if state == ABSENT:
                    problems.append(f"{key}: acknowledged object lost (GET: NoSuchKey); "
                                    f"acked {_short(ks.acked)}, in doubt {sorted(map(_short, ks.in_doubt))}")
                elif state in model.attempted.get(key, ()):
                    problems.append(f"{key}: stale/reordered version {_short(state)}: acked "
                                    f"{_short(ks.acked)}, in doubt {sorted(map(_short, ks.in_doubt))}")
                else:
                    problems.append(f"{key}: GET returned {len(body)} bytes (sha256 {_short(state)}) "
                                    "that were never sent for this key (torn or corrupt object)")
            if got is not None:
                v = model.versions.get(state)
                if v is not None and got["ETag"] != v.etag:
                    problems.append(f"{key}: GET ETag {got['ETag']} but body's ETag is {v.etag}")
                if got["ContentLength"] != len(body):
                    problems.append(f"{key}: Content-Length {got['ContentLength']} != body {len(body)}")
                o = listed.get(key)
                if o is None:
                    problems.append(f"{key}: GET works but the key is not listed")
                elif (o["Size"], o["ETag"]) != (len(body), got["ETag"]):
                    problems.append(f"{key}: listed (size {o['Size']}, ETag {o['ETag']}) but GET gives "
                                    f"(size {len(body)}, ETag {got['ETag']})")
            elif key in listed:
                problems.append(f"{key}: listed but GET says NoSuchKey")

        n_objects = len(listed)
        acked_present = sum(1 for ks in model.keys.values() if ks.acked != ABSENT)
        log(f"verified {len(model.keys)} keys, {n_objects} objects listed "
            f"({acked_present} acknowledged as present)")

        # ---------------------------------------------------------------- orphan reclamation
        uploads = []
        for page in c.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            uploads += page.get("Uploads", [])
        for up in uploads:
            c.abort_multipart_upload(Bucket=BUCKET, Key=up["Key"], UploadId=up["UploadId"])
        if listed:
            keys = [{"Key": k} for k in listed]
            for i in range(0, len(keys), 1000):
                r = c.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
                for e in r.get("Errors", []):
                    problems.append(f"DeleteObjects error: {e}")
        left = c.list_objects_v2(Bucket=BUCKET)
        if left.get("KeyCount"):
            problems.append(f"objects left after deleting all: {[o['Key'] for o in left['Contents']]}")
        if c.list_multipart_uploads(Bucket=BUCKET).get("Uploads"):
            problems.append("multipart uploads left after aborting all")
        log(f"aborted {len(uploads)} leftover multipart uploads, deleted {n_objects} objects")

        files_dir = data_dir / "data"
        if not files_dir.is_dir():
            layout = "\n".join(str(p.relative_to(data_dir)) for p in sorted(data_dir.rglob("*"))[:50])
            problems.append(f"{files_dir} does not exist; data dir layout:\n{layout}")
        else:
            deadline = time.monotonic() + 15
            files = harness.regular_files(files_dir)
            while files and time.monotonic() < deadline:
                time.sleep(0.25)
                files = harness.regular_files(files_dir)
            if files:
                total = sum(p.stat().st_size for p in files)
                sample = ", ".join(str(p.relative_to(data_dir)) for p in files[:10])
                msg = (f"orphans not reclaimed: {len(files)} regular files ({total} bytes) under "
                       f"{files_dir} after deleting every object and aborting every upload: {sample}")
                # Diagnostic: does a clean restart reclaim them?
                rc = daemon.stop()
                daemon.start()
                deadline = time.monotonic() + 15
                after = harness.regular_files(files_dir)
                while after and time.monotonic() < deadline:
                    time.sleep(0.25)
                    after = harness.regular_files(files_dir)
                msg += (f"; after one more clean restart (exit {rc}): {len(after)} files left")
                problems.append(msg)

        rc = daemon.stop()
        if rc != 0:
            problems.append(f"quarryd exited {rc} on SIGTERM at the end")
    except BaseException:
        daemon.kill()
        log(f"quarryd log tail:\n{daemon.log_tail()}")
        raise
    finally:
        ctl.up.clear()
        daemon.kill()

    elapsed = time.monotonic() - t_start
    stats = dict(model.stats, seed=seed, cycles=cycles, seconds=round(elapsed, 1))
    if problems:
        raise CrashTestFailure(
            f"crash test failed (seed {seed}, workdir {workdir} kept): {len(problems)} problem(s):\n  - "
            + "\n  - ".join(problems[:60])
            + f"\n--- quarryd log tail ---\n{daemon.log_tail(6000)}"
        )
    if model.stats["acked"] < cycles:
        raise CrashTestFailure(f"too few acknowledged writes ({model.stats}); the test did not exercise much")
    if own_dir and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"PASS in {elapsed:.1f}s: {stats}")
    return stats


def _short(h: str) -> str:
    return h if h == ABSENT else h[:12]


# --------------------------------------------------------------------------- pytest entry


def test_crash_recovery(tmp_path, aws_env_dir):
    import pytest

    if os.environ.get("QUARRY_E2E_ENDPOINT"):
        pytest.skip("QUARRY_E2E_ENDPOINT is set: the crash test needs quarryd itself")
    binary = harness.quarryd_binary()
    if not binary.is_file():
        pytest.fail(f"quarryd binary missing: {binary} (cargo build --release -p quarry-agent --bins)",
                    pytrace=False)
    seed = os.environ.get("QUARRY_CRASH_SEED")
    run(cycles=int(os.environ.get("QUARRY_CRASH_CYCLES", "80")), seed=int(seed) if seed else None,
        workdir=tmp_path, binary=binary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=80)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--quarryd", type=Path, help="quarryd binary (default target/release/quarryd)")
    ap.add_argument("--workdir", type=Path, help="where to keep the data dir and log (default: temp dir)")
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--keys", type=int, default=12, help="keys per writer")
    ap.add_argument("--max-put-mib", type=float, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="quarry-crash-"))
    harness.isolate_aws_env(tmp / "aws")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(cycles=args.cycles, seed=args.seed, workdir=args.workdir, binary=args.quarryd,
            writers=args.writers, nkeys=args.keys, max_put=int(args.max_put_mib * MiB), keep=args.keep)
    except CrashTestFailure as e:
        print(str(e), file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
