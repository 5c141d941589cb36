# SPDX-License-Identifier: Apache-2.0
"""Storage-side functions end to end: deploy, triggers, explicit invocation, async events,
limits and hostile modules, through the admin API, S3 clients and the `quarry` CLI.

The functions are the examples built by `examples/functions/build.sh target/functions`
(`./run-tests.sh functions`; or set QUARRY_E2E_FUNCTIONS to another output directory), plus a
few WAT modules and packages written here. These tests run their own quarryd (a config with a
fast event retry policy), not the session daemon: restarts, kills and a small instance pool
must not disturb the other tests.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import subprocess
import tarfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

import conftest
import harness
from conftest import new_bucket_name

pytestmark = pytest.mark.quarryd_only

MiB = 1024 * 1024

FUNCTIONS_DIR = Path(os.environ.get("QUARRY_E2E_FUNCTIONS", harness.REPO_ROOT / "target" / "functions"))

# The event queue retries fast so that dead-lettering takes well under a second.
NODE_CONFIG = """\
# quarryd config for the function e2e tests
[events]
max_attempts = 3
backoff_base = "100ms"
backoff_max = "500ms"
concurrency = 4

[functions.wasm]
max_instances = 128
max_memory = "256MiB"
queue_timeout = "2s"
"""

# A node whose pool has two instances and gives up waiting for one quickly.
SMALL_POOL_CONFIG = """\
[functions.wasm]
max_instances = 2
max_memory = "256MiB"
queue_timeout = "300ms"
"""


# --------------------------------------------------------------------------- helpers


def fn_file(rel: str) -> Path:
    path = FUNCTIONS_DIR / rel
    if not path.is_file():
        pytest.fail(f"{path} missing: build the example functions with "
                    f"`examples/functions/build.sh {FUNCTIONS_DIR}` (or ./run-tests.sh functions)",
                    pytrace=False)
    return path


def package(manifest: str, module: bytes, module_name: str = "function.wasm") -> bytes:
    """A function package: a .tar.gz holding manifest.toml and the module."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("manifest.toml", manifest.encode()), (module_name, module)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wat_text(s: str) -> str:
    assert all(0x20 <= ord(c) < 0x7F and c not in '"\\' for c in s), s
    return s


def parse_size(v) -> int:
    """Bytes of a size as the API prints it: 16777216, "16MiB", "16.0 MiB"."""
    if isinstance(v, int):
        return v
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]i?B|B)?\s*", str(v))
    assert m, f"not a size: {v!r}"
    unit = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
            "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}[m.group(2)]
    return round(float(m.group(1)) * unit)


def parse_secs(v) -> float:
    """Seconds of a duration as the API prints it: "5s", "2m", "1m 30s", "500ms"."""
    total = 0.0
    parts = re.findall(r"([\d.]+)\s*(ms|s|m|h)", str(v))
    assert parts, f"not a duration: {v!r}"
    for n, unit in parts:
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def s3_message(resp) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(resp.content)
    except ET.ParseError:
        return resp.text
    for el in root.iter():
        if el.tag.split("}")[-1] == "Message":
            return el.text or ""
    return ""


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    """Polls `pred` until it returns a truthy value; returns it, or fails naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def lines_meta(s3, bucket: str, key: str):
    try:
        return s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("lines")
    except ClientError:
        return None


def env_block(data: bytes) -> dict[str, str]:
    """The environment as the marker module stores it: NUL-terminated NAME=VALUE strings."""
    out = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode()] = v.decode()
    return out


# WAT modules written for these tests (deployed as text: the daemon assembles WAT itself).

def rewrite_wat(key: str) -> str:
    return f"""(module
  (import "quarry" "rewrite_key" (func $rewrite (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{wat_text(key)}")
  (func (export "_start")
    (if (call $rewrite (i32.const 16) (i32.const {len(key)}))
      (then unreachable))))
"""


def redirect_wat(url: str) -> str:
    return f"""(module
  (import "quarry" "redirect" (func $redirect (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{wat_text(url)}")
  (func (export "_start")
    (if (call $redirect (i32.const 16) (i32.const {len(url)}))
      (then unreachable))))
"""


def reject_wat(status: int, message: str) -> str:
    return f"""(module
  (import "quarry" "reject" (func $reject (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{wat_text(message)}")
  (func (export "_start")
    (call $reject (i32.const {status}) (i32.const 16) (i32.const {len(message)}))))
"""


def headers_wat(headers: list[tuple[str, str]]) -> str:
    data, calls, off = [], [], 16
    for name, value in headers:
        data.append(f'  (data (i32.const {off}) "{wat_text(name)}")')
        data.append(f'  (data (i32.const {off + 256}) "{wat_text(value)}")')
        calls.append(f"    (if (call $set (i32.const {off}) (i32.const {len(name)}) "
                     f"(i32.const {off + 256}) (i32.const {len(value)})) (then unreachable))")
        off += 512
    return ("(module\n"
            '  (import "quarry" "set_header" (func $set (param i32 i32 i32 i32) (result i32)))\n'
            '  (memory (export "memory") 1)\n' + "\n".join(data) + "\n"
            '  (func (export "_start")\n' + "\n".join(calls) + "))\n")


def slow_tag_wat(spins: int) -> str:
    """Spins (CPU, no output), then sets user metadata tagged=yes."""
    return f"""(module
  (import "quarry" "set_metadata" (func $meta (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "tagged")
  (data (i32.const 32) "yes")
  (global $sink (mut i64) (i64.const 0))
  (func (export "_start")
    (local $i i64)
    (local $acc i64)
    (loop $spin
      (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 6364136223846793005))
                               (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $spin (i64.lt_u (local.get $i) (i64.const {spins}))))
    (global.set $sink (local.get $acc))
    (if (call $meta (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 3))
      (then unreachable))))
"""


def marker_wat(marker_key: str) -> str:
    """Writes its whole environment (QUARRY_EVENT, QUARRY_KEY, ...) to object `marker_key` in the
    trigger's bucket with object_write (needs the "write" permission)."""
    return f"""(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ (param i32 i32) (result i32)))
  (import "quarry" "object_write" (func $write (param i32 i32 i32 i32) (result i32)))
  ;; 0: the marker key; 1024: count and size; 4096: pointers; 65536: the strings
  (memory (export "memory") 4)
  (data (i32.const 0) "{wat_text(marker_key)}")
  (func (export "_start")
    (if (call $sizes (i32.const 1024) (i32.const 1028)) (then unreachable))
    (if (i32.gt_u (i32.load (i32.const 1024)) (i32.const 15000)) (then unreachable))
    (if (i32.gt_u (i32.load (i32.const 1028)) (i32.const 196608)) (then unreachable))
    (if (call $environ (i32.const 4096) (i32.const 65536)) (then unreachable))
    (if (call $write (i32.const 0) (i32.const {len(marker_key)})
                     (i32.const 65536) (i32.load (i32.const 1028)))
      (then unreachable))))
"""


# --------------------------------------------------------------------------- a node


class Node:
    """A quarryd of this module's own, with admin, S3 and CLI helpers."""

    def __init__(self, root: Path, config: str):
        root.mkdir(parents=True, exist_ok=True)
        cfg = root / "quarry-functions.toml"
        cfg.write_text(config)
        self.daemon = harness.Daemon(binary=harness.quarryd_binary(), data_dir=root / "data-dir",
                                     log_path=root / "quarryd.log", extra_args=["--config", str(cfg)])
        self.signer = harness.Signer(self.daemon.access_key, self.daemon.secret_key)
        self.s3 = None

    # lifecycle

    def start(self, timeout: float = 60) -> None:
        binary = self.daemon.binary
        if not binary.is_file():
            pytest.fail(f"quarryd binary missing: {binary} (cargo build --release -p quarry-agent --bins)",
                        pytrace=False)
        try:
            self.daemon.start(timeout=timeout)
        except harness.DaemonError as e:
            self.daemon.kill()
            pytest.fail(str(e), pytrace=False)
        if self.daemon not in conftest.EXTRA_DAEMONS:
            conftest.EXTRA_DAEMONS.append(self.daemon)
        self.s3 = harness.boto3_client(self.endpoint, self.daemon.access_key, self.daemon.secret_key)

    def stop(self) -> int:
        return self.daemon.stop(timeout=30)

    def close(self) -> None:
        if self.daemon in conftest.EXTRA_DAEMONS:
            conftest.EXTRA_DAEMONS.remove(self.daemon)
        if self.daemon.proc is not None and self.daemon.proc.poll() is None:
            rc = self.daemon.stop(timeout=30)
            assert rc == 0, f"quarryd exited {rc} on SIGTERM\n{self.daemon.log_tail()}"

    @property
    def endpoint(self) -> str:
        return self.daemon.endpoint

    def log_tail(self) -> str:
        return self.daemon.log_tail()

    # admin API

    def admin(self, method: str, path: str, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        headers["Authorization"] = f"Bearer {self.daemon.admin_token}"
        return requests.request(method, f"{self.daemon.admin_url}{path}", headers=headers,
                                timeout=kw.pop("timeout", 120), **kw)

    def deploy_raw(self, name: str, body: bytes | str, *, memory: str | None = None,
                   timeout: str | None = None, params: dict[str, str] | None = None) -> requests.Response:
        query = []
        if memory:
            query.append(("memory", memory))
        if timeout:
            query.append(("timeout", timeout))
        for k, v in (params or {}).items():
            query.append(("param", f"{k}={v}"))
        path = f"/v1/functions/{name}"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        if isinstance(body, str):
            body = body.encode()
        return self.admin("PUT", path, data=body)

    def deploy(self, name: str, body: bytes | str | Path, **kw) -> dict:
        if isinstance(body, Path):
            body = body.read_bytes()
        r = self.deploy_raw(name, body, **kw)
        assert r.status_code in (200, 201), f"deploy {name}: {r.status_code} {r.text}"
        rec = r.json()
        assert rec["name"] == name, rec
        return rec

    def trigger(self, bucket: str, event: str, functions: list[str], *, prefix: str = "",
                suffix: str = "", params: dict[str, str] | None = None, range: str | None = None,
                expect: int = 201) -> dict:
        spec = {"bucket": bucket, "event": event, "prefix": prefix, "suffix": suffix,
                "functions": functions, "params": params or {}}
        if range:
            spec["range"] = range
        r = self.admin("POST", "/v1/triggers", json=spec)
        assert r.status_code == expect, f"trigger {spec}: {r.status_code} {r.text}"
        return r.json()

    def triggers(self) -> list[dict]:
        r = self.admin("GET", "/v1/triggers")
        assert r.status_code == 200, r.text
        return r.json()

    def events(self) -> dict:
        r = self.admin("GET", "/v1/events")
        assert r.status_code == 200, r.text
        return r.json()

    # S3

    def url(self, bucket: str, key: str, query: list[tuple[str, str]] | None = None) -> str:
        u = f"{self.endpoint}/{bucket}/{urllib.parse.quote(key, safe='/')}"
        if query:
            u += "?" + "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                                for k, v in query)
        return u

    def req(self, method: str, bucket: str, key: str, *, body: bytes = b"",
            headers: dict[str, str] | None = None, query: list[tuple[str, str]] | None = None,
            stream: bool = False, timeout: float = 120) -> requests.Response:
        """A SigV4-signed request (every header signed); redirects are not followed."""
        url = self.url(bucket, key, query)
        hdrs, _, _, _ = self.signer.sign(method, url, headers or {}, hashlib.sha256(body).hexdigest())
        return requests.request(method, url, data=body, headers=hdrs, stream=stream,
                                timeout=timeout, allow_redirects=False)

    def invoke(self, bucket: str, key: str, functions: str, params: dict[str, str] | None = None,
               **kw) -> requests.Response:
        headers = {"x-quarry-function": functions}
        for k, v in (params or {}).items():
            headers[f"x-quarry-param-{k}"] = v
        headers.update(kw.pop("headers", {}))
        return self.req("GET", bucket, key, headers=headers, **kw)

    def put(self, bucket: str, key: str, body: bytes, **kw) -> requests.Response:
        return self.req("PUT", bucket, key, body=body, **kw)

    # CLI

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        binary = harness.quarry_cli_binary()
        if not binary.is_file():
            pytest.fail(f"quarry CLI binary missing: {binary}", pytrace=False)
        env = dict(os.environ)
        env.update(
            QUARRY_ENDPOINT=self.endpoint,
            QUARRY_ADMIN_URL=self.daemon.admin_url,
            QUARRY_ADMIN_TOKEN=self.daemon.admin_token,
            AWS_ACCESS_KEY_ID=self.daemon.access_key,
            AWS_SECRET_ACCESS_KEY=self.daemon.secret_key,
            NO_COLOR="1",
        )
        p = subprocess.run([str(binary), *args], env=env, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"`quarry {' '.join(args)}` exited {p.returncode}\n--- stdout ---\n"
                                 f"{p.stdout.decode(errors='replace')}\n--- stderr ---\n"
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def new_bucket(self, prefix: str = "fn") -> str:
        name = new_bucket_name(prefix)
        self.s3.create_bucket(Bucket=name)
        return name

    def drop_bucket(self, bucket: str) -> None:
        # Triggers first, so emptying the bucket fires nothing.
        for t in self.triggers():
            if t["bucket"] == bucket:
                self.admin("DELETE", f"/v1/triggers/{t['id']}")
        harness.delete_bucket_fully(self.s3, bucket)


def assert_function_error(r: requests.Response, status: int, code: str, *needles: str) -> str:
    st, c, text = harness.s3_error(r)
    assert (st, c) == (status, code), f"expected {status} {code}, got {st} {c}: {text}"
    msg = s3_message(r)
    for n in needles:
        assert n in msg, f"{n!r} not in the error message {msg!r}"
    return msg


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node(tmp_path_factory, aws_env_dir):
    n = Node(tmp_path_factory.mktemp("fnode"), NODE_CONFIG)
    n.start()
    yield n
    n.close()


@pytest.fixture(scope="module")
def fns(node):
    """The example functions, deployed once under their own names (wordcount.wasm as "wc")."""
    deployed = {}
    for name, rel, kw in [
        ("wc", "wordcount.wasm", {}),
        ("gzip", "gzip.wasm", {"memory": "16MiB", "timeout": "60s"}),
        ("redact", "redact.wasm", {"memory": "16MiB"}),
        ("jsonl_validate", "jsonl_validate.wasm", {"memory": "16MiB"}),
        ("tag_lines", "tag_lines.wasm", {"memory": "16MiB"}),
        ("head", "head.wasm", {"memory": "16MiB"}),
        ("identity", "identity.wasm", {}),
    ]:
        deployed[name] = node.deploy(name, fn_file(rel), **kw)
    return deployed


@pytest.fixture
def nb(node):
    """A fresh bucket on the module's node; its triggers are removed afterwards."""
    name = node.new_bucket()
    yield name
    node.drop_bucket(name)


def fruit_lines() -> bytes:
    # banana on 1 line, kiwi on 2, fig on 3, plum on 4 (each line names one fruit)
    lines = (["a banana split"] + ["kiwi jam"] * 2 + ["fig tart", "dried fig", "fig"]
             + ["plum"] * 4 + ["nothing here", ""])
    return "\n".join(lines).encode() + b"\n"


# --------------------------------------------------------------------------- admin API


def test_deploy_records_versions_and_refusals(node):
    wasm = fn_file("wordcount.wasm").read_bytes()
    r = node.deploy_raw("wc-admin", wasm, memory="16MiB", timeout="5s", params={"word": "kiwi"})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["name"] == "wc-admin" and rec["version"] == 1, rec
    assert rec["sha256"] == hashlib.sha256(wasm).hexdigest(), rec
    assert rec["module_size"] == len(wasm), rec
    assert rec["params"] == {"word": "kiwi"}, rec
    assert rec["permissions"] == [], rec
    assert parse_size(rec["limits"]["memory"]) == 16 * MiB, rec
    assert parse_secs(rec["limits"]["timeout"]) == 5, rec
    # CPU time and first-byte limits are capped at the timeout.
    assert parse_secs(rec["limits"]["cpu_time"]) <= 5, rec
    assert parse_secs(rec["limits"]["first_byte_timeout"]) <= 5, rec
    for field in ("description", "deployed_at"):
        assert field in rec, rec
    assert "max_output" in rec["limits"], rec

    # A new version of the same name: 200, version 2.
    r = node.deploy_raw("wc-admin", wasm)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2, r.json()

    listed = node.admin("GET", "/v1/functions")
    assert listed.status_code == 200, listed.text
    assert [f for f in listed.json() if f["name"] == "wc-admin"][0]["version"] == 2, listed.json()
    shown = node.admin("GET", "/v1/functions/wc-admin")
    assert shown.status_code == 200 and shown.json()["version"] == 2, shown.text

    # WAT text is accepted as it is.
    r = node.deploy_raw("noop-wat", "(module (memory (export \"memory\") 1) (func (export \"_start\")))")
    assert r.status_code == 201, r.text

    # Refusals name what is wrong.
    r = node.deploy_raw("badimport", fn_file("hostile/badimport.wasm").read_bytes())
    assert r.status_code == 400, r.text
    assert "env::launch_missiles" in r.json()["error"], r.text
    assert node.admin("GET", "/v1/functions/badimport").status_code == 404
    r = node.deploy_raw("garbage", b"\x00asm\x01\x00\x00\x00\xff\xff")
    assert r.status_code == 400 and r.json()["error"], r.text
    r = node.deploy_raw("Bad Name!", wasm)
    assert r.status_code in (400, 404), r.text
    r = node.deploy_raw("toolarge", wasm, memory="1GiB")  # over functions.wasm.max_memory
    assert r.status_code == 400 and "max_memory" in r.json()["error"], r.text
    r = node.deploy_raw("wc-admin", wasm, memory="lots")
    assert r.status_code == 400 and "memory" in r.json()["error"], r.text
    mismatched = package('name = "other"\n', wasm)
    r = node.deploy_raw("wc-admin", mismatched)
    assert r.status_code == 400 and "other" in r.json()["error"], r.text

    # Unauthenticated: refused.
    r = requests.get(f"{node.daemon.admin_url}/v1/functions", timeout=30)
    assert r.status_code in (401, 403), r.status_code

    # Delete: 200, then 404.
    r = node.admin("DELETE", "/v1/functions/wc-admin")
    assert r.status_code == 200, r.text
    assert node.admin("GET", "/v1/functions/wc-admin").status_code == 404
    assert node.admin("DELETE", "/v1/functions/wc-admin").status_code == 404
    node.admin("DELETE", "/v1/functions/noop-wat")


def test_triggers_admin_api(node, fns, nb):
    t = node.trigger(nb, "after-get", ["redact"], prefix="a/")
    assert t["bucket"] == nb and t["event"] == "after-get" and t["functions"] == ["redact"], t
    assert isinstance(t["id"], int), t
    assert t["id"] in [x["id"] for x in node.triggers()]

    # One synchronous trigger per flow: an overlapping one is refused.
    node.trigger(nb, "after-get", ["head"], prefix="a/b", expect=409)
    node.trigger(nb, "after-get", ["head"], suffix=".txt", expect=409)
    # Another event, or a disjoint prefix, is fine.
    t2 = node.trigger(nb, "after-get", ["head"], prefix="b/")
    t3 = node.trigger(nb, "put-done", ["tag_lines"], prefix="a/")
    t4 = node.trigger(nb, "put-done", ["tag_lines"], prefix="a/")  # async: any number
    # Unknown function, unknown event.
    node.trigger(nb, "after-get", ["no-such-fn"], prefix="c/", expect=400)
    r = node.admin("POST", "/v1/triggers", json={"bucket": nb, "event": "on-read", "functions": ["head"]})
    assert r.status_code == 400 and "on-read" in r.json()["error"], r.text

    # A function in use cannot be deleted: 409 naming the trigger.
    r = node.admin("DELETE", "/v1/functions/redact")
    assert r.status_code == 409, r.text
    assert str(t["id"]) in r.text, r.text
    shown = node.admin("GET", "/v1/functions/redact").json()
    assert t["id"] in [x["id"] for x in shown["triggers"]], shown

    for x in (t, t2, t3, t4):
        r = node.admin("DELETE", f"/v1/triggers/{x['id']}")
        assert r.status_code == 200, r.text
    assert node.admin("DELETE", f"/v1/triggers/{t['id']}").status_code == 404
    ids = [x["id"] for x in node.triggers()]
    assert not {t["id"], t2["id"], t3["id"], t4["id"]} & set(ids), ids


# --------------------------------------------------------------------------- wordcount, params


def test_wordcount_explicit_header_and_presigned(node, fns, nb):
    body = fruit_lines()
    node.s3.put_object(Bucket=nb, Key="fruit.txt", Body=body)

    # Header form; the word param from a header.
    r = node.invoke(nb, "fruit.txt", "wc", {"word": "kiwi"})
    assert r.status_code == 200, r.text
    assert r.content == b"2\n"
    assert r.headers.get("x-quarry-function") == f"wc@v{fns['wc']['version']}", r.headers
    assert r.headers.get("x-quarry-backend") == "wasm", r.headers
    # No param: the function's own default (banana).
    r = node.invoke(nb, "fruit.txt", "wc")
    assert (r.status_code, r.content) == (200, b"1\n"), r.text
    # An empty word counts every line.
    r = node.invoke(nb, "fruit.txt", "wc", {"word": ""})
    every = str(body.count(b"\n")).encode() + b"\n"
    assert (r.status_code, r.content) == (200, every), r.text

    # The stored object is untouched by plain reads.
    assert node.s3.get_object(Bucket=nb, Key="fruit.txt")["Body"].read() == body

    # Query-parameter form in a presigned URL: the params are part of what is signed.
    def add_query(request, **_):
        sep = "&" if "?" in request.url else "?"
        request.url += sep + "x-quarry-function=wc&x-quarry-param-word=fig"

    s3 = harness.boto3_client(node.endpoint, node.daemon.access_key, node.daemon.secret_key)
    s3.meta.events.register("before-sign.s3.GetObject", add_query)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": nb, "Key": "fruit.txt"}, ExpiresIn=300)
    assert "x-quarry-function=wc" in url and "X-Amz-Signature=" in url, url
    r = requests.get(url, timeout=60)
    assert (r.status_code, r.content) == (200, b"3\n"), r.text
    assert r.headers.get("x-quarry-function", "").startswith("wc@v"), r.headers
    # Changing a signed param breaks the signature.
    r = requests.get(url.replace("x-quarry-param-word=fig", "x-quarry-param-word=plum"), timeout=60)
    assert harness.s3_error(r)[:2] == (403, "SignatureDoesNotMatch"), r.text

    # The same via boto3 itself (signed headers added before signing).
    def add_headers(request, **_):
        request.headers["x-quarry-function"] = "wc"
        request.headers["x-quarry-param-word"] = "plum"

    s3.meta.events.register("before-sign.s3.GetObject", add_headers)
    s3.meta.events.unregister("before-sign.s3.GetObject", add_query)
    got = s3.get_object(Bucket=nb, Key="fruit.txt")
    assert got["Body"].read() == b"4\n"

    # Unknown function: 404 NoSuchFunction naming it.
    r = node.invoke(nb, "fruit.txt", "no-such-function")
    assert_function_error(r, 404, "NoSuchFunction", "no-such-function")
    r = node.invoke(nb, "fruit.txt", "wc,no-such-function")
    assert_function_error(r, 404, "NoSuchFunction", "no-such-function")
    # Missing object: NoSuchKey as usual.
    r = node.invoke(nb, "missing.txt", "wc")
    assert harness.s3_error(r)[:2] == (404, "NoSuchKey"), r.text


def test_param_precedence_manifest_deploy_trigger_request(node, nb):
    body = fruit_lines()
    node.s3.put_object(Bucket=nb, Key="count/fruit.txt", Body=body)
    node.s3.put_object(Bucket=nb, Key="plain/fruit.txt", Body=body)
    pkg = fn_file("wordcount.tar.gz")

    # The package: params and limits from its manifest (word = "banana").
    rec = node.deploy("wordcount", pkg)
    v1 = rec["version"]
    assert rec["params"] == {"word": "banana"}, rec
    assert parse_size(rec["limits"]["memory"]) == 16 * MiB, rec
    assert parse_size(rec["limits"]["max_output"]) == 1 * MiB, rec
    assert parse_secs(rec["limits"]["cpu_time"]) == 20, rec
    assert rec["description"].startswith("Count lines containing a word"), rec
    r = node.invoke(nb, "plain/fruit.txt", "wordcount")
    assert (r.status_code, r.content) == (200, b"1\n"), r.text
    assert r.headers.get("x-quarry-function") == f"wordcount@v{v1}", r.headers

    # fn deploy --param beats the manifest.
    rec = node.deploy("wordcount", pkg, params={"word": "kiwi"})
    assert rec["version"] == v1 + 1 and rec["params"] == {"word": "kiwi"}, rec
    r = node.invoke(nb, "plain/fruit.txt", "wordcount")
    assert (r.status_code, r.content) == (200, b"2\n"), r.text
    assert r.headers.get("x-quarry-function") == f"wordcount@v{v1 + 1}", r.headers

    # A trigger's params beat the deploy's.
    node.trigger(nb, "after-get", ["wordcount"], prefix="count/", params={"word": "fig"})
    r = node.req("GET", nb, "count/fruit.txt")
    assert (r.status_code, r.content) == (200, b"3\n"), r.text
    assert r.headers.get("x-quarry-function") == f"wordcount@v{v1 + 1}", r.headers
    assert r.headers.get("x-quarry-backend") == "wasm", r.headers
    assert "Content-Length" not in r.headers, r.headers
    assert r.headers.get("Transfer-Encoding") == "chunked", r.headers
    assert node.s3.get_object(Bucket=nb, Key="count/fruit.txt")["Body"].read() == b"3\n"

    # The request's params beat the trigger's (header and query forms).
    r = node.req("GET", nb, "count/fruit.txt", headers={"x-quarry-param-word": "plum"})
    assert (r.status_code, r.content) == (200, b"4\n"), r.text
    r = node.req("GET", nb, "count/fruit.txt", query=[("x-quarry-param-word", "kiwi")])
    assert (r.status_code, r.content) == (200, b"2\n"), r.text
    # Outside the trigger's prefix nothing runs.
    r = node.req("GET", nb, "plain/fruit.txt")
    assert (r.status_code, r.content) == (200, body), r.text
    assert "x-quarry-function" not in r.headers, r.headers


# --------------------------------------------------------------------------- after-get


def test_after_get_gzip_on_suffix(node, fns, nb):
    text = b"".join(f"line {i}: the quick brown fox jumps over the lazy dog {i % 7}\n".encode()
                    for i in range(5000))
    node.s3.put_object(Bucket=nb, Key="x.txt", Body=text, ContentType="text/plain")
    node.s3.put_object(Bucket=nb, Key="x.csv", Body=text, ContentType="text/csv")
    node.trigger(nb, "after-get", ["gzip"], suffix=".txt")

    r = node.req("GET", nb, "x.txt", stream=True)
    assert r.status_code == 200, r.text
    raw = r.raw.read(decode_content=False)
    assert r.headers.get("Content-Encoding") == "gzip", r.headers
    assert r.headers.get("Content-Type") == "text/plain", r.headers
    assert "Content-Length" not in r.headers and "ETag" not in r.headers, r.headers
    assert r.headers.get("x-quarry-function") == f"gzip@v{fns['gzip']['version']}", r.headers
    assert r.headers.get("x-quarry-backend") == "wasm", r.headers
    assert raw[:2] == b"\x1f\x8b", raw[:16]
    assert gzip.decompress(raw) == text
    assert len(raw) < len(text) // 3, (len(raw), len(text))
    # A decoding client sees the original bytes.
    assert node.req("GET", nb, "x.txt").content == text
    # HEAD is not intercepted: the stored object's length, no encoding.
    head = node.s3.head_object(Bucket=nb, Key="x.txt")
    assert head["ContentLength"] == len(text) and "ContentEncoding" not in head, head

    # boto3 does not decode content encodings: it gets the gzip stream.
    got = node.s3.get_object(Bucket=nb, Key="x.txt")
    body = got["Body"].read()
    assert got["ContentEncoding"] == "gzip"
    assert gzip.decompress(body) == text

    # Other suffixes: untouched, with their length.
    r = node.req("GET", nb, "x.csv", stream=True)
    raw = r.raw.read(decode_content=False)
    assert r.status_code == 200 and raw == text
    assert r.headers.get("Content-Length") == str(len(text)), r.headers
    assert "Content-Encoding" not in r.headers and "x-quarry-function" not in r.headers, r.headers

    # Range on a transformed object: refused (the trigger has range = refuse), named.
    r = node.req("GET", nb, "x.txt", headers={"Range": "bytes=0-99"})
    assert_function_error(r, 400, "InvalidRequest", "gzip")
    with pytest.raises(ClientError) as ei:
        node.s3.get_object(Bucket=nb, Key="x.txt", Range="bytes=10-20")
    assert ei.value.response["Error"]["Code"] == "InvalidRequest"
    # ...but fine where no trigger applies.
    r = node.req("GET", nb, "x.csv", headers={"Range": "bytes=5-14"})
    assert (r.status_code, r.content) == (206, text[5:15]), r.text


def redact_expected(text: str) -> str:
    pat = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
    return pat.sub(lambda m: "*" * len(m.group(1)) + "@" + "*" * len(m.group(2)), text)


TICKET = (
    "From: bob.smith@example.org.\n"
    "To: support@quarry.test, cc ann_lee+tag@mail.sub.example.com\n"
    "no address here, just @ signs @ and a.b\n"
    "write to root@localhost or x@y.z\n"
    "last line alice@example.net\n"
)
TICKET_REDACTED = (
    "From: *********@***********.\n"
    "To: *******@***********, cc ***********@********************\n"
    "no address here, just @ signs @ and a.b\n"
    "write to root@localhost or *@***\n"
    "last line *****@***********\n"
)


def test_redact_head_and_pipelines(node, fns, nb):
    assert redact_expected(TICKET) == TICKET_REDACTED  # the hand-written expectation is consistent
    big = "".join(f"{i}: contact user{i}@host{i % 13}.example.com about case {i}\n" for i in range(3000))
    node.s3.put_object(Bucket=nb, Key="tickets/1.txt", Body=TICKET.encode())
    node.s3.put_object(Bucket=nb, Key="tickets/big.txt", Body=big.encode())
    node.s3.put_object(Bucket=nb, Key="plain/1.txt", Body=TICKET.encode())
    node.s3.put_object(Bucket=nb, Key="piped/1.txt", Body=TICKET.encode())

    # redact as an after-get trigger.
    node.trigger(nb, "after-get", ["redact"], prefix="tickets/")
    r = node.req("GET", nb, "tickets/1.txt")
    assert (r.status_code, r.text) == (200, TICKET_REDACTED), r.text
    assert r.headers.get("x-quarry-function", "").startswith("redact@v"), r.headers
    r = node.req("GET", nb, "tickets/big.txt")
    assert r.status_code == 200 and r.text == redact_expected(big)
    assert "user1@" not in r.text

    # head explicitly, with its n param.
    r = node.invoke(nb, "plain/1.txt", "head", {"n": "2"})
    assert (r.status_code, r.text) == (200, "".join(TICKET.splitlines(True)[:2])), r.text
    r = node.invoke(nb, "tickets/big.txt", "head", {"n": "1"})
    # The trigger's redact runs first, then the explicit head.
    assert (r.status_code, r.text) == (200, redact_expected(big).splitlines(True)[0]), r.text
    assert r.headers.get("x-quarry-function", "").count("@v") == 2, r.headers

    # An explicit pipeline: head's output is redact's input.
    r = node.invoke(nb, "plain/1.txt", "head,redact", {"n": "2"})
    assert (r.status_code, r.text) == (200, "".join(TICKET_REDACTED.splitlines(True)[:2])), r.text
    assert r.headers.get("x-quarry-function") == (
        f"head@v{fns['head']['version']},redact@v{fns['redact']['version']}"), r.headers
    # The order matters: redact,wc counts the masked addresses.
    r = node.invoke(nb, "plain/1.txt", "redact,wc", {"word": "*@*"})
    assert (r.status_code, r.text) == (200, "4\n"), r.text
    r = node.invoke(nb, "plain/1.txt", "wc,redact", {"word": "*@*"})
    assert (r.status_code, r.text) == (200, "0\n"), r.text

    # A trigger with a pipeline and params.
    node.trigger(nb, "after-get", ["redact", "wc"], prefix="piped/", params={"word": "@*"})
    r = node.req("GET", nb, "piped/1.txt")
    assert (r.status_code, r.text) == (200, "4\n"), r.text
    assert r.headers.get("x-quarry-function", "").split(",")[0].startswith("redact@v"), r.headers

    # Explicit invocation on PUT: the stored object is the function's output.
    r = node.put(nb, "stored/redacted.txt", TICKET.encode(), headers={"x-quarry-function": "redact"})
    assert r.status_code == 200, r.text
    stored = node.s3.get_object(Bucket=nb, Key="stored/redacted.txt")
    assert stored["Body"].read() == TICKET_REDACTED.encode()
    assert stored["ETag"] == harness.md5_etag(TICKET_REDACTED.encode())


def test_range_over_transformed_bytes(node, fns, nb):
    text = "".join(f"row {i:05d} mail someone{i}@example.com\n" for i in range(2000)).encode()
    expected = redact_expected(text.decode()).encode()
    assert len(expected) == len(text)
    node.s3.put_object(Bucket=nb, Key="r/data.txt", Body=text)
    node.trigger(nb, "after-get", ["redact"], prefix="r/", range="transformed")

    r = node.req("GET", nb, "r/data.txt", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206, r.text
    assert r.content == expected[100:200]
    m = re.fullmatch(r"bytes 100-199/(\d+|\*)", r.headers.get("Content-Range", ""))
    assert m, r.headers
    assert m.group(1) in ("*", str(len(expected))), r.headers
    r = node.req("GET", nb, "r/data.txt", headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == expected[-50:], r.text
    assert r.headers.get("Content-Range") == f"bytes {len(expected) - 50}-{len(expected) - 1}/{len(expected)}"
    r = node.req("GET", nb, "r/data.txt", headers={"Range": f"bytes={len(expected) - 10}-"})
    assert r.status_code == 206 and r.content == expected[-10:], r.text
    r = node.req("GET", nb, "r/data.txt", headers={"Range": f"bytes={len(expected) + 10}-"})
    assert harness.s3_error(r)[:2] == (416, "InvalidRange"), r.text


# --------------------------------------------------------------------------- before-get


def test_before_get_rewrite_redirect_reject_headers(node, nb):
    node.deploy("bg-rewrite", rewrite_wat("real/target.txt"))
    node.deploy("bg-redirect", redirect_wat("https://elsewhere.example/moved/here"))
    node.deploy("bg-reject", reject_wat(403, "no access to this key"))
    node.deploy("bg-headers", headers_wat([("cache-control", "max-age=60"), ("x-quarry-note", "hello")]))
    node.s3.put_object(Bucket=nb, Key="real/target.txt", Body=b"the real thing\n")
    node.s3.put_object(Bucket=nb, Key="alias/x", Body=b"the alias itself\n")
    node.s3.put_object(Bucket=nb, Key="moved/x", Body=b"moved\n")
    node.s3.put_object(Bucket=nb, Key="secret/x", Body=b"secret\n")
    node.s3.put_object(Bucket=nb, Key="hdr/x", Body=b"with headers\n")
    node.trigger(nb, "before-get", ["bg-rewrite"], prefix="alias/")
    node.trigger(nb, "before-get", ["bg-redirect"], prefix="moved/")
    node.trigger(nb, "before-get", ["bg-reject"], prefix="secret/")
    node.trigger(nb, "before-get", ["bg-headers"], prefix="hdr/")
    node.trigger(nb, "before-get", ["bg-headers"], prefix="alias/sub/", expect=409)

    # rewrite: the other key is read (even for a key that does not exist).
    for key in ("alias/x", "alias/does-not-exist"):
        r = node.req("GET", nb, key)
        assert (r.status_code, r.content) == (200, b"the real thing\n"), (key, r.text)
    assert node.s3.get_object(Bucket=nb, Key="alias/x")["Body"].read() == b"the real thing\n"

    # redirect: 307 with Location, the object is not read.
    r = node.req("GET", nb, "moved/x")
    assert r.status_code == 307, r.text
    assert r.headers.get("Location") == "https://elsewhere.example/moved/here", r.headers

    # reject: the function's status, RejectedByFunction, its message.
    r = node.req("GET", nb, "secret/x")
    assert_function_error(r, 403, "RejectedByFunction", "no access to this key", "bg-reject@v")
    with pytest.raises(ClientError) as ei:
        node.s3.get_object(Bucket=nb, Key="secret/x")
    assert ei.value.response["Error"]["Code"] == "RejectedByFunction"

    # A copy would hand out the guarded bytes without the function: refused, naming the trigger.
    with pytest.raises(ClientError) as ei:
        node.s3.copy_object(Bucket=nb, Key="leak/x", CopySource={"Bucket": nb, "Key": "secret/x"})
    err = ei.value.response["Error"]
    assert err["Code"] == "AccessDenied" and "before-get trigger" in err["Message"], err
    up = node.s3.create_multipart_upload(Bucket=nb, Key="leak/mp")
    with pytest.raises(ClientError) as ei:
        node.s3.upload_part_copy(Bucket=nb, Key="leak/mp", UploadId=up["UploadId"], PartNumber=1,
                                 CopySource={"Bucket": nb, "Key": "secret/x"})
    assert ei.value.response["Error"]["Code"] == "AccessDenied"
    node.s3.abort_multipart_upload(Bucket=nb, Key="leak/mp", UploadId=up["UploadId"])
    with pytest.raises(ClientError):
        node.s3.head_object(Bucket=nb, Key="leak/x")

    # headers: added to the plain response, whose length stays.
    r = node.req("GET", nb, "hdr/x")
    assert (r.status_code, r.content) == (200, b"with headers\n"), r.text
    assert r.headers.get("Cache-Control") == "max-age=60", r.headers
    assert r.headers.get("x-quarry-note") == "hello", r.headers
    assert r.headers.get("Content-Length") == str(len(b"with headers\n")), r.headers
    r = node.req("GET", nb, "hdr/x", headers={"Range": "bytes=5-11"})
    assert (r.status_code, r.content) == (206, b"headers"), r.text
    assert r.headers.get("Content-Length") == "7", r.headers
    assert r.headers.get("Content-Range") == "bytes 5-11/13", r.headers
    assert r.headers.get("Cache-Control") == "max-age=60", r.headers

    # Other keys: untouched.
    node.s3.put_object(Bucket=nb, Key="other/x", Body=b"other\n")
    r = node.req("GET", nb, "other/x")
    assert (r.status_code, r.content) == (200, b"other\n") and "Cache-Control" not in r.headers


# --------------------------------------------------------------------------- put


GOOD_JSONL = (b'{"a": 1, "b": [true, false, null]}\n'
              b'\n'
              b'   \n'
              b'"just a string \\u00e9 \\n"\r\n'
              b'[1.5e3, -0, {"nested": {"x": "y"}}]\n')
BAD_LINE_3 = (b'{"ok": 1}\n'
              b'[1, 2]\n'
              b'{"broken": }\n'
              b'{"fine": 4}\n')


def test_put_trigger_validates(node, fns, nb):
    node.trigger(nb, "put", ["jsonl_validate"], suffix=".jsonl")

    r = node.put(nb, "good.jsonl", GOOD_JSONL)
    assert r.status_code == 200, r.text
    assert r.headers.get("x-quarry-function", "").startswith("jsonl_validate@v"), r.headers
    got = node.s3.get_object(Bucket=nb, Key="good.jsonl")
    assert got["Body"].read() == GOOD_JSONL
    assert got["ETag"] == harness.md5_etag(GOOD_JSONL)
    # boto3's default upload (with its checksum) goes through too.
    node.s3.put_object(Bucket=nb, Key="boto.jsonl", Body=GOOD_JSONL)
    assert node.s3.get_object(Bucket=nb, Key="boto.jsonl")["Body"].read() == GOOD_JSONL

    # A bad line 3: 400 naming the line, nothing stored.
    r = node.put(nb, "bad.jsonl", BAD_LINE_3)
    msg = assert_function_error(r, 400, "RejectedByFunction", "line 3", "jsonl_validate@v")
    assert "line 1" not in msg and "line 2" not in msg, msg
    r = node.req("GET", nb, "bad.jsonl")
    assert harness.s3_error(r)[:2] == (404, "NoSuchKey"), r.text
    with pytest.raises(ClientError) as ei:
        node.s3.put_object(Bucket=nb, Key="bad2.jsonl", Body=BAD_LINE_3)
    assert ei.value.response["Error"]["Code"] == "RejectedByFunction"
    assert "line 3" in ei.value.response["Error"]["Message"]

    # Over an existing object: the previous version stays.
    r = node.put(nb, "good.jsonl", BAD_LINE_3)
    assert harness.s3_error(r)[:2] == (400, "RejectedByFunction"), r.text
    assert node.s3.get_object(Bucket=nb, Key="good.jsonl")["Body"].read() == GOOD_JSONL

    # An explicit function on PUT runs before the trigger's validation; its output is stored.
    mails = b'{"from": "bob@example.org"}\n{"to": ["ann@example.com"]}\n'
    r = node.put(nb, "mail.jsonl", mails, headers={"x-quarry-function": "redact"})
    assert r.status_code == 200, r.text
    assert r.headers.get("x-quarry-function", "").startswith("redact@v"), r.headers
    assert "jsonl_validate@v" in r.headers.get("x-quarry-function", ""), r.headers
    want = b'{"from": "***@***********"}\n{"to": ["***@***********"]}\n'
    assert node.s3.get_object(Bucket=nb, Key="mail.jsonl")["Body"].read() == want

    # Keys the trigger does not cover are stored as they are.
    node.s3.put_object(Bucket=nb, Key="bad.txt", Body=BAD_LINE_3)
    assert node.s3.get_object(Bucket=nb, Key="bad.txt")["Body"].read() == BAD_LINE_3

    # No way around the validation: multipart uploads and copies into covered keys are refused.
    with pytest.raises(ClientError) as ei:
        up = node.s3.create_multipart_upload(Bucket=nb, Key="mp.jsonl")
        part = node.s3.upload_part(Bucket=nb, Key="mp.jsonl", UploadId=up["UploadId"], PartNumber=1,
                                   Body=BAD_LINE_3)
        node.s3.complete_multipart_upload(
            Bucket=nb, Key="mp.jsonl", UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert ei.value.response["Error"]["Code"] == "InvalidRequest", ei.value.response
    with pytest.raises(ClientError) as ei:
        node.s3.copy_object(Bucket=nb, Key="copied.jsonl", CopySource={"Bucket": nb, "Key": "bad.txt"})
    assert ei.value.response["Error"]["Code"] == "InvalidRequest", ei.value.response
    for key in ("mp.jsonl", "copied.jsonl"):
        assert harness.s3_error(node.req("GET", nb, key))[:2] == (404, "NoSuchKey"), key


def test_put_trigger_transforms(node, fns, nb):
    node.trigger(nb, "put", ["gzip"], prefix="gz/")
    text = b"".join(b"%d compressible line of text\n" % (i % 50) for i in range(20000))

    r = node.put(nb, "gz/a.txt", text)
    assert r.status_code == 200, r.text
    got = node.s3.get_object(Bucket=nb, Key="gz/a.txt")
    stored = got["Body"].read()
    assert gzip.decompress(stored) == text and len(stored) < len(text) // 5
    # The ETag and length are those of the stored bytes.
    assert got["ETag"] == harness.md5_etag(stored) == r.headers.get("ETag"), (got["ETag"], r.headers)
    assert node.s3.head_object(Bucket=nb, Key="gz/a.txt")["ContentLength"] == len(stored)

    # aws-chunked uploads (signed chunks, and unsigned with a checksum trailer) are transformed too.
    for mode in ("signed", "unsigned"):
        r = node.signer.chunked_put(node.url(nb, f"gz/chunked-{mode}.txt"), text, mode=mode)
        assert r.status_code == 200, (mode, r.text)
        stored = node.s3.get_object(Bucket=nb, Key=f"gz/chunked-{mode}.txt")["Body"].read()
        assert gzip.decompress(stored) == text, mode


def bad_upload(node: Node, how: str, bucket: str, key: str, body: bytes) -> requests.Response:
    url = node.url(bucket, key)
    if how == "content-md5":
        md5 = base64.b64encode(hashlib.md5(body + b"!").digest()).decode()
        return node.put(bucket, key, body, headers={"Content-MD5": md5})
    if how == "sha256":
        hdrs, _, _, _ = node.signer.sign("PUT", url, {}, hashlib.sha256(body + b"!").hexdigest())
        return requests.put(url, data=body, headers=hdrs, timeout=60)
    if how == "chunk-signature":
        return node.signer.chunked_put(url, body, corrupt_chunk_signature=True)
    if how == "trailer-checksum":
        return node.signer.chunked_put(url, body, mode="unsigned", corrupt_trailer=True)
    raise AssertionError(how)


@pytest.mark.parametrize("how,expected", [
    ("content-md5", (400, "BadDigest")),
    ("sha256", (400, "XAmzContentSHA256Mismatch")),
    ("chunk-signature", (403, "SignatureDoesNotMatch")),
    ("trailer-checksum", (400, "BadDigest")),
])
def test_put_trigger_bad_upload_keeps_its_s3_error(node, fns, nb, how, expected):
    """A body that fails the client's own integrity checks is the client's error (as without a
    function), not a function failure; nothing is stored and the previous version stays."""
    node.trigger(nb, "put", ["gzip"], prefix="gz/")
    body = os.urandom(150_000)
    for key in ("plain/obj", "gz/obj"):
        node.s3.put_object(Bucket=nb, Key=key, Body=b"previous")  # (stored gzipped under gz/)
        before = node.s3.get_object(Bucket=nb, Key=key)["Body"].read()
        over = harness.s3_error(bad_upload(node, how, nb, key, body))
        kept = node.s3.get_object(Bucket=nb, Key=key)["Body"].read()
        new = harness.s3_error(bad_upload(node, how, nb, key + "-new", body))
        absent = harness.s3_error(node.req("GET", nb, key + "-new"))[:2]
        # Nothing stored, whatever the answer.
        assert kept == before and absent == (404, "NoSuchKey"), (key, kept[:20], absent)
        assert over[:2] == expected and new[:2] == expected, (
            f"{key}: expected {expected}, got {over} (over an object) and {new} (new key)")


# --------------------------------------------------------------------------- async events


def test_put_done_tag_lines(node, fns, nb):
    node.trigger(nb, "put-done", ["tag_lines"], prefix="logs/")
    node.s3.put_object(Bucket=nb, Key="logs/a.txt", Body=b"one\ntwo\nthree\nfour\nfive")  # 5 lines
    node.s3.put_object(Bucket=nb, Key="logs/b.txt", Body=b"x\n" * 1234)
    node.s3.put_object(Bucket=nb, Key="logs/empty.txt", Body=b"")
    node.s3.put_object(Bucket=nb, Key="other/c.txt", Body=b"1\n2\n")
    # A multipart completion fires put-done too.
    part1 = b"line\n" * (5 * MiB // 5)
    part2 = b"tail\nend"
    up = node.s3.create_multipart_upload(Bucket=nb, Key="logs/mp.txt", Metadata={"keep": "me"})
    e1 = node.s3.upload_part(Bucket=nb, Key="logs/mp.txt", UploadId=up["UploadId"], PartNumber=1, Body=part1)
    e2 = node.s3.upload_part(Bucket=nb, Key="logs/mp.txt", UploadId=up["UploadId"], PartNumber=2, Body=part2)
    node.s3.complete_multipart_upload(Bucket=nb, Key="logs/mp.txt", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1["ETag"]}, {"PartNumber": 2, "ETag": e2["ETag"]}]})

    expect = {"logs/a.txt": "5", "logs/b.txt": "1234", "logs/empty.txt": "0",
              "logs/mp.txt": str(5 * MiB // 5 + 2)}
    for key, lines in expect.items():
        got = wait_for(lambda: lines_meta(node.s3, nb, key), 20, f"x-amz-meta-lines on {key}")
        assert got == lines, (key, got)
    head = node.s3.head_object(Bucket=nb, Key="logs/mp.txt")
    assert head["Metadata"] == {"keep": "me", "lines": expect["logs/mp.txt"]}, head["Metadata"]
    assert head["ContentLength"] == len(part1) + len(part2)
    # The body is untouched by a metadata update.
    assert node.s3.get_object(Bucket=nb, Key="logs/a.txt")["Body"].read() == b"one\ntwo\nthree\nfour\nfive"
    time.sleep(0.3)
    assert lines_meta(node.s3, nb, "other/c.txt") is None
    # Nothing is left behind in the queue for this bucket.
    wait_for(lambda: not [e for e in node.events()["pending"] if e["bucket"] == nb], 10, "empty queue")
    assert not [e for e in node.events()["dead"] if e["bucket"] == nb]


def test_dead_letter_and_retry(node, nb):
    node.deploy("dl", fn_file("hostile/trap.wasm"))
    t = node.trigger(nb, "put-done", ["dl"], prefix="dead/")
    body = b"a\nb\nc\n"
    node.s3.put_object(Bucket=nb, Key="dead/x.txt", Body=body)

    def dead_one(version: int):
        for e in node.events()["dead"]:
            if (e["bucket"], e["key"]) == (nb, "dead/x.txt") and f"dl@v{version}" in (e["last_error"] or ""):
                return e
        return None

    t0 = time.monotonic()
    ev = wait_for(lambda: dead_one(1), 15, "the event in the dead-letter list")
    assert ev["trigger"] == t["id"] and ev["event"] == "put-done", ev
    assert ev["attempts"] == 3, ev
    assert "trapped" in ev["last_error"], ev
    assert time.monotonic() - t0 < 10
    assert ev["id"] not in [e["id"] for e in node.events()["pending"]]

    # The CLI lists it.
    out = node.cli("events", "ls").stdout.decode()
    row = [ln for ln in out.splitlines() if f"{nb}/dead/x.txt" in ln]
    assert len(row) == 1, out
    assert re.match(rf"\s*{ev['id']}\s", row[0]), row
    assert re.search(r"\sdead\s", row[0]) and "trapped" in row[0], row

    # Retried with the function still trapping (a new version of it): dead again, as v2.
    node.deploy("dl", fn_file("hostile/trap.wasm"))
    node.cli("events", "retry", str(ev["id"]))
    ev2 = wait_for(lambda: dead_one(2), 15, "the retried event dead again")
    assert ev2["id"] == ev["id"] and ev2["attempts"] == 3, ev2

    # Fixed function, retried through the admin API: delivered, and gone from both lists.
    node.deploy("dl", fn_file("tag_lines.wasm"))
    r = node.admin("POST", f"/v1/events/{ev['id']}/retry")
    assert r.status_code == 200, r.text
    got = wait_for(lambda: lines_meta(node.s3, nb, "dead/x.txt"), 15, "the retried event's metadata")
    assert got == "3"
    wait_for(lambda: ev["id"] not in [e["id"] for e in node.events()["pending"]], 10, "event settled")
    assert ev["id"] not in [e["id"] for e in node.events()["dead"]]

    # Retrying what is not a dead letter: 404; via the CLI, an error.
    assert node.admin("POST", f"/v1/events/{ev['id']}/retry").status_code == 404
    assert node.admin("POST", "/v1/events/not-a-number/retry").status_code == 400
    p = node.cli("events", "retry", str(ev["id"]), check=False)
    assert p.returncode != 0, p.stdout


def test_delete_and_copy_events(node, fns, nb):
    write_manifest = 'description = "writes its environment to {key}"\npermissions = ["write"]\n'
    node.deploy("mark-delete", package(write_manifest.format(key="_marks/delete"),
                                       marker_wat("_marks/delete").encode(), "function.wat"))
    node.deploy("mark-copy", package(write_manifest.format(key="_marks/copy"),
                                     marker_wat("_marks/copy").encode(), "function.wat"))
    # Without the permission object_write is refused (and the module traps).
    node.deploy("mark-noperm", marker_wat("_marks/noperm"))
    node.trigger(nb, "delete", ["mark-delete"], prefix="d/")
    node.trigger(nb, "delete", ["mark-noperm"], prefix="d/")
    node.trigger(nb, "copy", ["mark-copy"], prefix="c/")
    node.trigger(nb, "copy", ["tag_lines"], prefix="c/")

    def marker(key: str):
        try:
            return env_block(node.s3.get_object(Bucket=nb, Key=key)["Body"].read())
        except ClientError:
            return None

    node.s3.put_object(Bucket=nb, Key="d/gone.txt", Body=b"bye\n")
    node.s3.put_object(Bucket=nb, Key="src.txt", Body=b"1\n2\n3\n4\n", Metadata={"origin": "src"})
    time.sleep(0.2)
    assert marker("_marks/delete") is None and marker("_marks/copy") is None

    node.s3.delete_object(Bucket=nb, Key="d/gone.txt")
    env = wait_for(lambda: marker("_marks/delete"), 15, "the delete event's marker object")
    assert env.get("QUARRY_EVENT") == "delete", env
    assert env.get("QUARRY_KEY") == "d/gone.txt", env
    assert env.get("QUARRY_BUCKET") == nb, env
    assert env.get("QUARRY_FUNCTION") == "mark-delete", env

    node.s3.copy_object(Bucket=nb, Key="c/copy.txt", CopySource={"Bucket": nb, "Key": "src.txt"})
    env = wait_for(lambda: marker("_marks/copy"), 15, "the copy event's marker object")
    assert env.get("QUARRY_EVENT") == "copy", env
    assert env.get("QUARRY_KEY") == "c/copy.txt", env
    assert env.get("QUARRY_SIZE") == "8", env
    got = wait_for(lambda: lines_meta(node.s3, nb, "c/copy.txt"), 15, "tag_lines on the copy")
    assert got == "4"
    assert node.s3.head_object(Bucket=nb, Key="c/copy.txt")["Metadata"] == {"origin": "src", "lines": "4"}
    # Copies elsewhere fire nothing; the marker's own writes fire nothing either.
    assert lines_meta(node.s3, nb, "src.txt") is None

    # The function without "write" fails every attempt and ends up dead, naming itself.
    ev = wait_for(lambda: [e for e in node.events()["dead"] if e["bucket"] == nb], 15,
                  "mark-noperm's dead letter")
    assert len(ev) == 1 and "mark-noperm@v" in ev[0]["last_error"] and ev[0]["event"] == "delete", ev
    assert ev[0]["key"] == "d/gone.txt", ev
    assert marker("_marks/noperm") is None

    # DeleteObjects fires one delete event per key (each dies the same way).
    for key in ("d/batch-1", "d/batch-2", "e/not-watched"):
        node.s3.put_object(Bucket=nb, Key=key, Body=b"x")
    node.s3.delete_objects(Bucket=nb, Delete={"Objects": [
        {"Key": "d/batch-1"}, {"Key": "d/batch-2"}, {"Key": "e/not-watched"}]})

    def dead_keys():
        keys = sorted(e["key"] for e in node.events()["dead"] if e["bucket"] == nb)
        return keys if len(keys) >= 3 else None

    assert wait_for(dead_keys, 15, "dead letters of the batch delete") == [
        "d/batch-1", "d/batch-2", "d/gone.txt"]
    env = wait_for(lambda: (m := marker("_marks/delete")) and m.get("QUARRY_KEY") != "d/gone.txt" and m,
                   15, "the batch's delete markers")
    assert env["QUARRY_KEY"] in ("d/batch-1", "d/batch-2") and env["QUARRY_EVENT"] == "delete", env


# --------------------------------------------------------------------------- restarts


@pytest.fixture(scope="module")
def restart_node(tmp_path_factory, aws_env_dir):
    n = Node(tmp_path_factory.mktemp("fnode-restart"), NODE_CONFIG)
    n.start()
    # ~0.2-1 s of CPU per event: no delivery can finish in the moment between a PUT's reply and
    # the signal that follows it.
    n.deploy("slowtag", slow_tag_wat(400_000_000))
    yield n
    n.close()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_put_done_survives_restart(restart_node, how):
    n = restart_node
    bucket = n.new_bucket("rs")
    n.trigger(bucket, "put-done", ["slowtag"])
    keys = [f"obj-{i}" for i in range(6)]
    for key in keys:
        r = n.put(bucket, key, key.encode() + b"\n")
        assert r.status_code == 200, r.text
    if how == "sigterm":
        rc = n.stop()
        assert rc == 0, f"quarryd exited {rc} on SIGTERM\n{n.log_tail()}"
    else:
        n.daemon.kill()
    n.start()

    for key in keys:
        got = wait_for(lambda: n.s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("tagged"),
                       60, f"put-done on {key} after the restart")
        assert got == "yes"
        assert n.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode() + b"\n"
    wait_for(lambda: not [e for e in n.events()["pending"] if e["bucket"] == bucket], 30, "empty queue")
    assert not [e for e in n.events()["dead"] if e["bucket"] == bucket], n.events()
    # Functions and triggers outlive the restart.
    assert [t for t in n.triggers() if t["bucket"] == bucket]
    assert n.admin("GET", "/v1/functions/slowtag").status_code == 200
    n.drop_bucket(bucket)


# --------------------------------------------------------------------------- hostile functions


def test_hostile_functions_fail_cleanly(node, fns, nb):
    node.s3.put_object(Bucket=nb, Key="in.txt", Body=b"some input\n")
    node.deploy("trap", fn_file("hostile/trap.wasm"))
    node.deploy("loop", fn_file("hostile/loop.wasm"), timeout="2s")
    node.deploy("grow", fn_file("hostile/grow.wasm"), memory="16MiB")
    node.deploy("slowstart", package('name = "slowstart"\n[limits]\nfirst_byte_timeout = "1s"\n',
                                     fn_file("hostile/slowstart.wasm").read_bytes()))

    r = node.invoke(nb, "in.txt", "trap")
    assert_function_error(r, 500, "FunctionFailed", "trap@v1", "trapped")

    t0 = time.monotonic()
    r = node.invoke(nb, "in.txt", "loop")
    took = time.monotonic() - t0
    msg = assert_function_error(r, 500, "FunctionFailed", "loop@v1")
    assert re.search(r"CPU-time limit|time limit|first-byte limit", msg), msg
    assert 1.5 < took < 8, took

    r = node.invoke(nb, "in.txt", "grow")
    assert_function_error(r, 500, "FunctionFailed", "grow@v1", "memory limit")

    t0 = time.monotonic()
    r = node.invoke(nb, "in.txt", "slowstart")
    assert_function_error(r, 500, "FunctionFailed", "slowstart@v1", "first-byte")
    assert time.monotonic() - t0 < 6

    # A failing function on PUT stores nothing.
    r = node.put(nb, "never.txt", b"data\n", headers={"x-quarry-function": "trap"})
    assert_function_error(r, 500, "FunctionFailed", "trap@v1", "trapped")
    assert harness.s3_error(node.req("GET", nb, "never.txt"))[:2] == (404, "NoSuchKey")

    # ...and the node carries on.
    assert node.daemon.health() == 200
    r = node.invoke(nb, "in.txt", "identity")
    assert (r.status_code, r.content) == (200, b"some input\n"), r.text


def test_flood_stops_at_output_limit(node, nb):
    node.s3.put_object(Bucket=nb, Key="in.txt", Body=b"x\n")
    node.deploy("flood", package('name = "flood"\n[limits]\nmax_output = "10MiB"\n',
                                 fn_file("hostile/flood.wasm").read_bytes()))

    # On PUT the output goes to the store: a clean error, nothing stored.
    r = node.put(nb, "flooded.txt", b"x\n", headers={"x-quarry-function": "flood"})
    assert_function_error(r, 500, "FunctionFailed", "flood@v1", "output limit")
    assert harness.s3_error(node.req("GET", nb, "flooded.txt"))[:2] == (404, "NoSuchKey")

    # On GET the response is under way when the limit hits: the body must break off (never end
    # cleanly, which would pass a truncated body off as whole), after at most 10 MiB.
    r = node.invoke(nb, "in.txt", "flood", stream=True, timeout=60)
    assert r.status_code == 200, r.text
    received, broke = 0, None
    try:
        for chunk in r.iter_content(65536):
            received += len(chunk)
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as e:
        broke = e
    assert broke is not None, f"the body ended cleanly after {received} bytes"
    assert 0 < received <= 10 * MiB, received
    assert node.daemon.health() == 200


def test_many_invocations_beside_a_runaway(node, fns, nb):
    node.deploy("loop2", fn_file("hostile/loop.wasm"), timeout="2s")
    bodies = {f"obj-{i}": os.urandom(1000 + i * 997) for i in range(64)}
    for key, data in bodies.items():
        node.s3.put_object(Bucket=nb, Key=key, Body=data)
    node.s3.put_object(Bucket=nb, Key="spin", Body=b"x")

    result = {}

    def runaway():
        result["loop"] = node.invoke(nb, "spin", "loop2")

    spinner = threading.Thread(target=runaway)
    spinner.start()
    time.sleep(0.2)

    def one(key):
        r = node.invoke(nb, key, "identity")
        return key, r.status_code, r.content, r.headers.get("x-quarry-function")

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        outcomes = list(pool.map(one, bodies))
    took = time.monotonic() - t0
    spinner.join(30)
    bad = [(k, st, fn) for k, st, content, fn in outcomes if st != 200 or content != bodies[k]]
    assert not bad, bad[:5]
    assert all(fn and fn.startswith("identity@v") for *_, fn in outcomes)
    assert took < 30, took
    assert_function_error(result["loop"], 500, "FunctionFailed", "loop2@v1")
    assert node.daemon.health() == 200


def test_pool_full_is_slowdown(tmp_path_factory, aws_env_dir):
    n = Node(tmp_path_factory.mktemp("fnode-small"), SMALL_POOL_CONFIG)
    n.start()
    try:
        n.deploy("loop", fn_file("hostile/loop.wasm"), timeout="3s")
        n.deploy("identity", fn_file("identity.wasm"))
        bucket = n.new_bucket("pool")
        n.s3.put_object(Bucket=bucket, Key="k", Body=b"payload\n")
        r = n.invoke(bucket, "k", "identity")
        assert (r.status_code, r.content) == (200, b"payload\n"), r.text

        results = []
        spinners = [threading.Thread(target=lambda: results.append(n.invoke(bucket, "k", "loop")))
                    for _ in range(2)]
        for t in spinners:
            t.start()
        # While both loops hold the two slots (3 s), a third job waits 300 ms and is refused.
        deadline = time.monotonic() + 2.5
        refused = None
        while refused is None and time.monotonic() < deadline:
            r = n.invoke(bucket, "k", "identity")
            if r.status_code == 503:
                refused = r
            else:
                assert (r.status_code, r.content) == (200, b"payload\n"), r.text
                time.sleep(0.05)
        assert refused is not None, "no 503 while both slots were taken"
        assert_function_error(refused, 503, "SlowDown")
        for t in spinners:
            t.join(30)
        assert [x.status_code for x in results] == [500, 500], [x.text for x in results]
        # Slots free again: served.
        r = n.invoke(bucket, "k", "identity")
        assert (r.status_code, r.content) == (200, b"payload\n"), r.text
        n.drop_bucket(bucket)
    finally:
        n.close()


# --------------------------------------------------------------------------- CLI


def test_cli_functions_triggers_invoke(node, fns, nb):
    node.s3.put_object(Bucket=nb, Key="cli/fruit.txt", Body=fruit_lines())
    node.s3.put_object(Bucket=nb, Key="raw/fruit.txt", Body=fruit_lines())
    wasm = fn_file("wordcount.wasm")

    out = node.cli("fn", "deploy", "clicount", str(wasm), "--memory", "16MiB", "--timeout", "5s",
                   "--param", "word=kiwi").stdout.decode()
    assert "clicount" in out, out
    rec = node.admin("GET", "/v1/functions/clicount").json()
    assert rec["params"] == {"word": "kiwi"} and parse_size(rec["limits"]["memory"]) == 16 * MiB, rec
    assert parse_secs(rec["limits"]["timeout"]) == 5, rec

    out = node.cli("fn", "ls").stdout.decode()
    assert re.search(r"^\s*clicount\b", out, re.M), out
    out = node.cli("fn", "show", "clicount").stdout.decode()
    assert "clicount" in out and "kiwi" in out and rec["sha256"][:12] in out, out
    p = node.cli("fn", "show", "no-such-fn", check=False)
    assert p.returncode != 0 and b"no-such-fn" in p.stderr, p.stderr

    # invoke: the result on stdout, and nothing else there.
    assert node.cli("invoke", f"{nb}/raw/fruit.txt", "--function", "clicount").stdout == b"2\n"
    assert node.cli("invoke", f"{nb}/raw/fruit.txt", "--function", "clicount",
                    "--param", "word=plum").stdout == b"4\n"
    p = node.cli("invoke", f"{nb}/raw/fruit.txt", "--function", "no-such-fn", check=False)
    assert p.returncode != 0 and b"NoSuchFunction" in p.stderr, p.stderr

    # trigger add / ls / rm
    out = node.cli("trigger", "add", "--bucket", nb, "--event", "after-get", "--function", "clicount",
                   "--prefix", "cli/", "--suffix", ".txt", "--param", "word=fig").stdout.decode()
    ts = [t for t in node.triggers() if t["bucket"] == nb]
    assert len(ts) == 1, ts
    t = ts[0]
    assert (t["event"], t["prefix"], t["suffix"], t["functions"], t["params"]) == (
        "after-get", "cli/", ".txt", ["clicount"], {"word": "fig"}), t
    assert str(t["id"]) in out, out
    out = node.cli("trigger", "ls").stdout.decode()
    assert re.search(rf"^\s*{t['id']}\b.*{re.escape(nb)}", out, re.M), out
    assert node.s3.get_object(Bucket=nb, Key="cli/fruit.txt")["Body"].read() == b"3\n"
    p = node.cli("trigger", "add", "--bucket", nb, "--event", "after-get", "--function", "clicount",
                 "--prefix", "cli/sub/", check=False)
    assert p.returncode != 0 and (b"409" in p.stderr or b"overlap" in p.stderr.lower()), p.stderr
    # A pipeline trigger, with range = transformed.
    node.cli("trigger", "add", "--bucket", nb, "--event", "after-get", "--function", "head,clicount",
             "--prefix", "raw/", "--param", "n=3", "--param", "word=fig", "--range", "transformed")
    t2 = [x for x in node.triggers() if x["bucket"] == nb and x["prefix"] == "raw/"][0]
    assert t2["functions"] == ["head", "clicount"] and t2["range"] == "transformed", t2
    assert node.s3.get_object(Bucket=nb, Key="raw/fruit.txt")["Body"].read() == b"0\n"

    # fn rm refuses while a trigger uses the function.
    p = node.cli("fn", "rm", "clicount", check=False)
    assert p.returncode != 0 and str(t["id"]).encode() in p.stderr, p.stderr
    node.cli("trigger", "rm", str(t["id"]))
    node.cli("trigger", "rm", str(t2["id"]))
    assert not [x for x in node.triggers() if x["bucket"] == nb]
    assert node.s3.get_object(Bucket=nb, Key="cli/fruit.txt")["Body"].read() == fruit_lines()
    node.cli("fn", "rm", "clicount")
    out = node.cli("fn", "ls").stdout.decode()
    assert not re.search(r"^\s*clicount\b", out, re.M), out
    assert node.admin("GET", "/v1/functions/clicount").status_code == 404

    # A package deploys with its manifest's params; a pipeline invoke; a bad module is refused
    # naming the import.
    out = node.cli("fn", "deploy", "wordcount", str(fn_file("wordcount.tar.gz"))).stdout.decode()
    assert re.search(r"\bwordcount v\d+", out) and "word=banana" in out, out
    assert node.cli("invoke", f"{nb}/raw/fruit.txt", "--function", "wordcount").stdout == b"1\n"
    assert node.cli("invoke", f"{nb}/raw/fruit.txt", "--function", "head,wordcount",
                    "--param", "n=3", "--param", "word=kiwi").stdout == b"2\n"
    p = node.cli("fn", "deploy", "badimport", str(fn_file("hostile/badimport.wasm")), check=False)
    assert p.returncode != 0 and b"env::launch_missiles" in p.stderr, p.stderr
