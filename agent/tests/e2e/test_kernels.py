# SPDX-License-Identifier: Apache-2.0
"""Built-in kernels end to end: every kernel through S3 with its params, on the backend the
scheduler picks and on each backend a request pins, kernel functions deployed with preset
params and bound to triggers, placement policies and their errors, and the `quarry kernel` /
`quarry devices` CLI.

Oracles are computed here in Python from the same input (and, where Python has no oracle, the
outputs of the CPU and OpenCL variants are compared with each other: the differential tests in
offload/tests prove them byte for byte; here the point is that S3 delivers them).
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import time

import pytest

from test_functions import NODE_CONFIG, Node, assert_function_error  # noqa: F401 (fixtures)

pytestmark = pytest.mark.quarryd_only


@pytest.fixture(scope="module")
def node(tmp_path_factory, aws_env_dir):
    n = Node(tmp_path_factory.mktemp("knode"), NODE_CONFIG)
    n.start()
    yield n
    n.close()


@pytest.fixture
def nb(node):
    name = node.new_bucket("kn")
    yield name
    node.drop_bucket(name)


def devices(node) -> list[dict]:
    r = node.admin("GET", "/v1/devices")
    assert r.status_code == 200, r.text
    return r.json()


def backend_ids(node) -> list[str]:
    return [d["id"] for d in devices(node)]


def log_lines(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = ["alpha", "beta", "ERROR", "error", "warn", "Ünïcode", "日本語", "x" * 50]
    out = []
    for i in range(n):
        k = rng.randint(0, 12)
        out.append(" ".join(rng.choice(words) for _ in range(k)) + f" #{i}")
    return ("\n".join(out) + "\n").encode()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def get_on_each_backend(node, bucket, key, fn, params) -> dict[str, bytes]:
    """The kernel's output from every backend that can run it (pinned by id)."""
    out = {}
    for backend in backend_ids(node):
        r = node.invoke(bucket, key, fn, params, headers={"x-quarry-backend-class": f"backend:{backend}"})
        if r.status_code == 200:
            assert r.headers.get("x-quarry-backend") == backend, r.headers
            out[backend] = r.content
    assert out, "no backend ran the kernel"
    return out


# --------------------------------------------------------------------------- kernels


def test_grep_lines_and_count(node, nb):
    body = log_lines(20000, 1)
    node.s3.put_object(Bucket=nb, Key="app.log", Body=body)
    lines = body.splitlines(keepends=True)
    want = b"".join(l for l in lines if b"ERROR" in l)
    for backend, got in get_on_each_backend(node, nb, "app.log", "grep", {"pattern": "ERROR"}).items():
        assert got == want, f"grep lines on {backend}"
    want_ci = sum(1 for l in lines if b"error" in l.lower())
    r = node.invoke(nb, "app.log", "grep", {"pattern": "error", "ignore_case": "true", "mode": "count"})
    assert (r.status_code, r.content) == (200, f"{want_ci}\n".encode()), r.text
    assert r.headers.get("x-quarry-backend") in backend_ids(node), r.headers
    # Multi-byte UTF-8 patterns are plain bytes (in the query string: headers are latin-1).
    r = node.invoke(nb, "app.log", "grep", {"mode": "count"},
                    query=[("x-quarry-param-pattern", "日本語")])
    assert r.content == f"{sum(1 for l in lines if '日本語'.encode() in l)}\n".encode()


def test_kernel_param_errors_are_invalid_argument(node, nb):
    node.s3.put_object(Bucket=nb, Key="a.txt", Body=b"a\n")
    r = node.invoke(nb, "a.txt", "grep")
    assert_function_error(r, 400, "InvalidArgument", "pattern")
    r = node.invoke(nb, "a.txt", "grep", {"pattern": "a", "mode": "all"})
    assert_function_error(r, 400, "InvalidArgument", "lines, count")
    r = node.invoke(nb, "a.txt", "grep", {"pattern": "a", "colour": "red"})
    assert_function_error(r, 400, "InvalidArgument", "colour")


def test_csv_filter_and_agg(node, nb):
    rng = random.Random(2)
    rows = [["id", "city", "amount", "note"]]
    for i in range(5000):
        note = rng.choice(["plain", 'has "quotes"', "comma, inside", "multi\nline"])
        rows.append([str(i), rng.choice(["Oslo", "Lima", "Pune"]), f"{rng.randint(-5000, 99999) / 100:.2f}", note])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    body = buf.getvalue().encode()
    node.s3.put_object(Bucket=nb, Key="sales.csv", Body=body)

    params = {"column": "amount", "op": "gt", "value": "500", "numeric": "true", "select": "id,city"}
    want = "id,city\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows[1:] if float(r[2]) > 500)
    for backend, got in get_on_each_backend(node, nb, "sales.csv", "csv-filter", params).items():
        assert got.decode() == want, f"csv-filter on {backend}"

    # Whole rows, verbatim, with quoting kept.
    r = node.invoke(nb, "sales.csv", "csv-filter", {"column": "note", "op": "contains", "value": "quotes"})
    assert r.status_code == 200, r.text
    got_rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert got_rows == [rows[0]] + [row for row in rows[1:] if "quotes" in row[3]]

    r = node.invoke(nb, "sales.csv", "csv-agg", {"column": "amount", "where_column": "city",
                                                  "where_op": "eq", "where_value": "Lima"})
    assert r.status_code == 200, r.text
    vals = [round(float(row[2]) * 100) for row in rows[1:] if row[1] == "Lima"]
    fields = dict(line.split("\t") for line in r.content.decode().splitlines())
    assert int(fields["count"]) == len(vals)
    assert fields["sum"] == f"{sum(vals) / 100:.6f}" or round(float(fields["sum"]) * 100) == sum(vals)
    assert round(float(fields["min"]) * 100) == min(vals)
    assert round(float(fields["max"]) * 100) == max(vals)
    # An unknown column names the header.
    r = node.invoke(nb, "sales.csv", "csv-filter", {"column": "price", "value": "1"})
    assert r.status_code in (400, 500), r.text
    assert "price" in r.text and "amount" in r.text, r.text


def test_jsonl_filter(node, nb):
    docs = [{"level": lvl, "msg": f"m{i}", "nested": {"level": "error"}} for i, lvl in
            enumerate(["info", "error", "warn", "error"] * 500)]
    body = "".join(json.dumps(d) + "\n" for d in docs).encode()
    node.s3.put_object(Bucket=nb, Key="events.jsonl", Body=body)
    want = "".join(json.dumps(d) + "\n" for d in docs if d["level"] == "error").encode()
    for backend, got in get_on_each_backend(node, nb, "events.jsonl", "jsonl-filter",
                                            {"field": "level", "value": "error"}).items():
        assert got == want, f"jsonl-filter on {backend}"


def test_histogram_crc32c_xxh3(node, nb):
    body = bytes(random.Random(3).getrandbits(8) for _ in range(300_000))
    node.s3.put_object(Bucket=nb, Key="blob.bin", Body=body)
    r = node.invoke(nb, "blob.bin", "crc32c")
    assert (r.status_code, r.content) == (200, f"{crc32c(body):08x}\n".encode()), r.text
    r = node.invoke(nb, "blob.bin", "byte-histogram")
    assert r.status_code == 200, r.text
    counts = {}
    for line in r.content.decode().splitlines():
        k, v = line.split("\t")
        counts[k] = int(v)
    assert counts.pop("total") == len(body)
    assert counts == {str(b): body.count(bytes([b])) for b in range(256) if body.count(bytes([b]))}
    outs = get_on_each_backend(node, nb, "blob.bin", "xxh3", {})
    assert len(set(outs.values())) == 1, outs
    assert len(next(iter(outs.values()))) == 17


def test_reed_solomon_and_lz4(node, nb):
    body = bytes(random.Random(4).getrandbits(8) for _ in range(100_000))
    node.s3.put_object(Bucket=nb, Key="blob.bin", Body=body)
    params = {"data": "4", "parity": "2", "unit": "4096"}
    outs = get_on_each_backend(node, nb, "blob.bin", "reed-solomon", params)
    stripes = -(-len(body) // (4 * 4096))
    for backend, got in outs.items():
        assert len(got) == stripes * 2 * 4096, backend
    assert len(set(outs.values())) == 1
    r = node.invoke(nb, "blob.bin", "lz4")
    assert r.status_code == 200, r.text
    back = subprocess.run(["lz4", "-d", "-c"], input=r.content, capture_output=True, check=True)
    assert back.stdout == body


# --------------------------------------------------------------------------- functions, triggers, policies


def test_kernel_function_with_preset_params_and_trigger(node, nb):
    r = node.admin("PUT", "/v1/functions/errors?kernel=grep&param=pattern%3DERROR&param=mode%3Dcount")
    assert r.status_code in (200, 201), r.text
    assert r.json()["kernel"] == "grep"
    r = node.admin("PUT", "/v1/functions/grep?kernel=grep")
    assert r.status_code == 400 and "kernel" in r.text, r.text
    r = node.admin("PUT", "/v1/functions/bad?kernel=grep&param=mode%3Dall")
    assert r.status_code == 400 and "lines, count" in r.text, r.text
    r = node.admin("PUT", "/v1/functions/nokernel?kernel=no-such-kernel")
    assert r.status_code == 404 and "quarry kernel ls" in r.text, r.text

    body = log_lines(3000, 5)
    node.s3.put_object(Bucket=nb, Key="logs/a.log", Body=body)
    node.trigger(nb, "after-get", ["errors"], prefix="logs/")
    got = node.s3.get_object(Bucket=nb, Key="logs/a.log")["Body"].read()
    assert got == f"{sum(1 for l in body.splitlines() if b'ERROR' in l)}\n".encode()
    # The request's params win over the deploy's.
    r = node.req("GET", nb, "logs/a.log", headers={"x-quarry-param-pattern": "beta"})
    assert r.content == f"{sum(1 for l in body.splitlines() if b'beta' in l)}\n".encode(), r.text


def test_placement_policies(node, nb):
    node.s3.put_object(Bucket=nb, Key="a.txt", Body=b"x\ny\n")
    classes = {d["class"] for d in devices(node)}
    assert "cpu" in classes
    r = node.invoke(nb, "a.txt", "grep", {"pattern": "x"}, headers={"x-quarry-backend-class": "require:cpu"})
    assert (r.status_code, r.content) == (200, b"x\n"), r.text
    if "gpu" not in classes:
        r = node.invoke(nb, "a.txt", "grep", {"pattern": "x"}, headers={"x-quarry-backend-class": "require:gpu"})
        assert_function_error(r, 400, "InvalidRequest", "gpu", "cpu")
        # Prefer falls back to what there is.
        r = node.invoke(nb, "a.txt", "grep", {"pattern": "x"}, headers={"x-quarry-backend-class": "prefer:gpu"})
        assert (r.status_code, r.content) == (200, b"x\n"), r.text
    r = node.invoke(nb, "a.txt", "grep", {"pattern": "x"}, headers={"x-quarry-backend-class": "quantum"})
    assert_function_error(r, 400, "InvalidArgument", "quantum")


def test_cli_kernels_and_devices(node):
    out = node.cli("kernel", "ls", "--params").stdout.decode()
    for name in ["grep", "csv-filter", "csv-agg", "jsonl-filter", "byte-histogram", "crc32c", "xxh3",
                 "reed-solomon", "lz4"]:
        assert name in out, out
    assert "pattern" in out and "(required)" in out, out
    # Calibration runs in the background at start; wait for its first rates.
    deadline = time.monotonic() + 60
    while not any(d["rates"] for d in devices(node)) and time.monotonic() < deadline:
        time.sleep(0.5)
    out = node.cli("devices").stdout.decode()
    assert out.startswith("ID") and "native" in out and "host memory" in out, out
    assert "THROUGHPUT" in out and "grep" in out and "/s" in out, out
    listing = json.loads(node.cli("devices", "--json").stdout)
    assert {d["id"] for d in listing} == set(backend_ids(node))


# --------------------------------------------------------------------------- user kernels

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def require_opencl_device(node) -> None:
    """User kernels run on OpenCL devices only. CI has PoCL (QUARRY_REQUIRE_OPENCL=1 makes a
    missing device a failure); elsewhere the test says why it cannot run."""
    import os
    if any(d["id"].startswith("opencl-") for d in devices(node)):
        return
    if os.environ.get("QUARRY_REQUIRE_OPENCL") == "1":
        pytest.fail("no OpenCL device found, and QUARRY_REQUIRE_OPENCL=1")
    pytest.skip("no OpenCL device on this machine (install pocl-opencl-icd)")


def test_user_kernel_register_trigger_and_build_log(node, nb):
    require_opencl_device(node)
    out = node.cli("kernel", "register", "contains", str(REPO / "examples/kernels/contains.cl"),
                   "--shape", "filter", "--framing", "lines").stdout.decode()
    assert "registered kernel contains" in out, out
    assert "contains" in node.cli("kernel", "ls").stdout.decode()

    body = log_lines(4000, 7)
    node.s3.put_object(Bucket=nb, Key="u/app.log", Body=body)
    want = b"".join(l for l in body.splitlines(keepends=True) if b"warn" in l)
    # Invoked by name: only OpenCL devices hold it.
    r = node.invoke(nb, "u/app.log", "contains", {"needle": "warn"})
    assert (r.status_code, r.content) == (200, want), r.text[:300]
    assert r.headers["x-quarry-backend"].startswith("opencl-"), r.headers
    # Deployed with a preset param and bound to a trigger.
    r = node.admin("PUT", "/v1/functions/warnings?kernel=contains&param=needle%3Dwarn")
    assert r.status_code in (200, 201), r.text
    node.trigger(nb, "after-get", ["warnings"], prefix="u/")
    assert node.s3.get_object(Bucket=nb, Key="u/app.log")["Body"].read() == want
    # In use: it cannot be removed.
    r = node.admin("DELETE", "/v1/kernels/contains")
    assert r.status_code == 409, r.text

    # A syntax error answers with the compiler's log and registers nothing.
    bad = b"__kernel void quarry_count(__global const uchar *in) { int x = ; }\n"
    r = node.admin("PUT", "/v1/kernels/broken?shape=filter&framing=lines", data=bad)
    assert r.status_code == 400, r.text
    doc = r.json()
    assert "build_log" in json.dumps(doc) and "error" in json.dumps(doc).lower(), doc
    r = node.admin("GET", "/v1/kernels/broken")
    assert r.status_code == 404, r.text
