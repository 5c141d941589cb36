# SPDX-License-Identifier: Apache-2.0
"""quarryd's admin listener: /health and /metrics."""

from __future__ import annotations

import re

import pytest
import requests

pytestmark = pytest.mark.quarryd_only


def test_health(quarryd):
    r = requests.get(f"{quarryd.admin_url}/health", timeout=10)
    assert r.status_code == 200, r.text


def test_metrics(quarryd, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"metrics")
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    r = requests.get(f"{quarryd.admin_url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    text = r.text
    assert re.search(r"^# TYPE \S+ (counter|gauge|histogram|summary)$", text, re.M), text[:2000]
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples, text[:2000]
    for ln in samples:  # every sample line parses as Prometheus text format
        assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEinfINFNa]+( -?\d+)?', ln), ln


def test_s3_port_is_not_admin(quarryd):
    """The admin API is only on the admin listener; the S3 port does not serve /metrics unsigned."""
    r = requests.get(f"{quarryd.endpoint}/metrics", timeout=10)
    assert r.status_code in (403, 404), r.status_code
