// SPDX-License-Identifier: Apache-2.0
//! The ratios of the `s3` scenario, each against its target.
//!
//! Judged:
//! - quarryd 64 MiB cold GET throughput / plain cold read throughput: at least 0.8 (serving a
//!   large object from disk costs little more than reading its file from disk). Both sides
//!   read after their files were evicted from the page cache; the ratio is `not_measured`
//!   unless the run's self-test showed that eviction works and both cells' eviction checks
//!   found nothing cached;
//! - Ceph 4 KiB GET and PUT p50 / quarryd p50: at least 2 (small objects are at least twice
//!   as fast as the peer's). `ceph` is the peer with `tcp_nodelay=1`;
//! - quarryd idle RSS: at most 30 MiB.
//!
//! One ratio per concurrency level. Reported for context, without a target: the same 64 MiB
//! GET from a warm page cache (an HTTP server cannot reach a memcpy-speed file read on two
//! shared cores), the latency ratios against the peer as `start.sh` configures it (no
//! `tcp_nodelay`), the 64 MiB PUT throughput against plain write + fsync, and the loopback
//! ceiling (an HTTP server answering from memory), both as quarryd's share of it and as the
//! highest value the GET ratios can reach over HTTP on this machine.

use super::options::{TargetKind, size_label};
use super::report::{CellResult, Comparison, Op, QuarrydFacts, Ratio, Verdict, round3};

/// The large-object size the throughput ratios use.
pub const LARGE: u64 = 64 << 20;
/// The small-object size the latency ratios use.
pub const SMALL: u64 = 4 << 10;

/// Which cell a ratio reads.
#[derive(Debug, Clone, Copy)]
struct CellKey {
    target: TargetKind,
    op: Op,
    size: u64,
    concurrency: usize,
}

impl CellKey {
    fn find(self, results: &[CellResult]) -> Result<&CellResult, String> {
        results
            .iter()
            .find(|r| {
                r.target == self.target
                    && r.op == self.op
                    && r.size_bytes == self.size
                    && r.concurrency == self.concurrency
            })
            .ok_or_else(|| {
                format!(
                    "no {} {} {} x{} result",
                    self.target,
                    self.op.as_str(),
                    size_label(self.size),
                    self.concurrency
                )
            })
    }
}

/// Computes every ratio from the cells of one run, quarryd's facts and whether the run's
/// page-cache self-test showed that eviction works.
pub fn compute(
    results: &[CellResult],
    concurrency: &[usize],
    quarryd: Option<&QuarrydFacts>,
    eviction_works: bool,
) -> Vec<Ratio> {
    use TargetKind::{Ceph, CephDefault, Loopback, Plain, Quarryd};
    let cell = |target, op, size, concurrency| CellKey {
        target,
        op,
        size,
        concurrency,
    };
    let mut ratios = Vec::new();
    for &c in concurrency {
        let (quarryd, plain) = (
            cell(Quarryd, Op::GetCold, LARGE, c),
            cell(Plain, Op::GetCold, LARGE, c),
        );
        let value = cold(quarryd, results, eviction_works)
            .and_then(|()| cold(plain, results, eviction_works))
            .and_then(|()| quotient(quarryd, plain, results, |r| r.mb_per_s));
        ratios.push(ratio(
            format!("get_64MiB_cold_vs_plain_cold_c{c}"),
            format!(
                "quarryd 64 MiB GET MB/s / plain file read MB/s, both evicted from the page \
                 cache before every op (read from disk), concurrency {c}"
            ),
            value,
            Some((Comparison::AtLeast, 0.8)),
        ));
    }
    for op in [Op::GetWarm, Op::Put] {
        for &c in concurrency {
            let name = op_name(op);
            ratios.push(ratio(
                format!("ceph_vs_quarryd_4KiB_{name}_p50_c{c}"),
                format!(
                    "Ceph (tcp_nodelay) 4 KiB {name} p50 / quarryd 4 KiB {name} p50, \
                     concurrency {c}"
                ),
                quotient(
                    cell(Ceph, op, SMALL, c),
                    cell(Quarryd, op, SMALL, c),
                    results,
                    |r| r.p50_ms,
                ),
                Some((Comparison::AtLeast, 2.0)),
            ));
        }
    }
    let idle = quarryd
        .and_then(|q| q.idle)
        .map(|rss| rss.rss_mib)
        .ok_or_else(|| "quarryd did not run to its idle RSS reading".to_owned());
    ratios.push(ratio(
        "quarryd_idle_rss_mib".to_owned(),
        "quarryd VmRSS in MiB after start and settle, before any load".to_owned(),
        idle,
        Some((Comparison::AtMost, 30.0)),
    ));

    for &c in concurrency {
        ratios.push(ratio(
            format!("get_64MiB_warm_vs_plain_warm_c{c}"),
            format!(
                "quarryd 64 MiB GET MB/s / plain file read MB/s, both from a warm page cache, \
                 concurrency {c} (context: a memcpy-speed read is out of reach over HTTP here)"
            ),
            quotient(
                cell(Quarryd, Op::GetWarm, LARGE, c),
                cell(Plain, Op::GetWarm, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            None,
        ));
    }
    for op in [Op::GetWarm, Op::Put] {
        for &c in concurrency {
            let name = op_name(op);
            ratios.push(ratio(
                format!("ceph_default_vs_quarryd_4KiB_{name}_p50_c{c}"),
                format!(
                    "Ceph as start.sh configures it (no tcp_nodelay) 4 KiB {name} p50 / quarryd \
                     4 KiB {name} p50, concurrency {c}"
                ),
                quotient(
                    cell(CephDefault, op, SMALL, c),
                    cell(Quarryd, op, SMALL, c),
                    results,
                    |r| r.p50_ms,
                ),
                None,
            ));
        }
    }
    for &c in concurrency {
        ratios.push(ratio(
            format!("quarryd_put_64MiB_throughput_vs_plain_fsync_write_c{c}"),
            format!("quarryd 64 MiB PUT MB/s / plain write+fsync MB/s, concurrency {c}"),
            quotient(
                cell(Quarryd, Op::Put, LARGE, c),
                cell(Plain, Op::Put, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            None,
        ));
    }
    for &c in concurrency {
        ratios.push(ratio(
            format!("quarryd_get_64MiB_warm_vs_loopback_c{c}"),
            format!(
                "quarryd 64 MiB warm GET MB/s / in-memory HTTP server GET MB/s, concurrency {c}"
            ),
            quotient(
                cell(Quarryd, Op::GetWarm, LARGE, c),
                cell(Loopback, Op::GetWarm, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            None,
        ));
        for (plain_op, temperature) in [(Op::GetWarm, "warm"), (Op::GetCold, "cold")] {
            ratios.push(ratio(
                format!("loopback_get_64MiB_vs_plain_{temperature}_c{c}"),
                format!(
                    "in-memory HTTP server 64 MiB GET MB/s / plain {temperature} file read \
                     MB/s, concurrency {c}: the ceiling of get_64MiB_{temperature}_vs_plain_\
                     {temperature}_c{c} over HTTP here"
                ),
                quotient(
                    cell(Loopback, Op::GetWarm, LARGE, c),
                    cell(Plain, plain_op, LARGE, c),
                    results,
                    |r| r.mb_per_s,
                ),
                None,
            ));
        }
    }
    ratios
}

/// The op's name in ratio names: the 4 KiB latency ratios read warm GETs (the peer serves
/// from RAM whatever the harness does), named `get` as before the cold/warm split.
fn op_name(op: Op) -> &'static str {
    match op {
        Op::GetWarm | Op::GetCold => "get",
        other => other.as_str(),
    }
}

/// Whether a cold cell was cold: eviction works on this machine and the cell's own check
/// found nothing cached after evicting.
fn cold(key: CellKey, results: &[CellResult], eviction_works: bool) -> Result<(), String> {
    if !eviction_works {
        return Err(
            "page-cache eviction does not work on this machine (see page_cache): \
             cold cells were not cold"
                .to_owned(),
        );
    }
    let check = key
        .find(results)?
        .eviction
        .ok_or_else(|| format!("{} cold cell has no eviction check", key.target))?;
    if check.cached_after_eviction > 0 {
        return Err(format!(
            "{} cold cell: {} of {} probed pages still cached after eviction",
            key.target, check.cached_after_eviction, check.probed_pages
        ));
    }
    Ok(())
}

fn quotient(
    numerator: CellKey,
    denominator: CellKey,
    results: &[CellResult],
    figure: fn(&CellResult) -> f64,
) -> Result<f64, String> {
    let (n, d) = (
        figure(numerator.find(results)?),
        figure(denominator.find(results)?),
    );
    if d > 0.0 {
        Ok(n / d)
    } else {
        Err(format!("denominator {} is zero", denominator.target))
    }
}

/// A ratio named `name` with its verdict against `goal` (none: reported for context), or
/// `not_measured` with the reason when `value` is an error.
pub fn ratio(
    name: String,
    description: String,
    value: Result<f64, String>,
    goal: Option<(Comparison, f64)>,
) -> Ratio {
    let (value, reason) = match value {
        Ok(v) => (Some(round3(v)), None),
        Err(reason) => (None, Some(reason)),
    };
    let status = match (value, goal) {
        (None, _) => Verdict::NotMeasured,
        (Some(_), None) => Verdict::Info,
        (Some(v), Some((Comparison::AtLeast, t))) => verdict(v >= t),
        (Some(v), Some((Comparison::AtMost, t))) => verdict(v <= t),
    };
    Ratio {
        name,
        description,
        value,
        comparison: goal.map(|(c, _)| c),
        target: goal.map(|(_, t)| t),
        status,
        reason,
    }
}

fn verdict(pass: bool) -> Verdict {
    if pass { Verdict::Pass } else { Verdict::Fail }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::load::CellOutcome;
    use crate::scenario::machine::RssSample;
    use crate::scenario::page_cache::EvictionCheck;

    fn result(target: TargetKind, op: Op, size: u64, mb: u64, p50_ms: u64) -> CellResult {
        // 1 s, so bytes = MB/s * 1e6; every op takes p50_ms.
        let outcome = CellOutcome {
            ops: 1,
            bytes: mb * 1_000_000,
            elapsed: Duration::from_secs(1),
            setup: Duration::ZERO,
            latencies_ns: vec![p50_ms * 1_000_000],
        };
        let mut result = CellResult::new(target, op, size, 1, &outcome);
        if op == Op::GetCold {
            result.eviction = Some(EvictionCheck {
                files: 1,
                probed_pages: 3,
                cached_after_first_eviction: 1,
                cached_after_eviction: 0,
            });
        }
        result
    }

    fn facts() -> QuarrydFacts {
        QuarrydFacts {
            idle: Some(RssSample {
                rss_mib: 12.5,
                peak_rss_mib: 13.0,
            }),
            ..Default::default()
        }
    }

    fn find<'a>(ratios: &'a [Ratio], name: &str) -> &'a Ratio {
        ratios.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn ratios_compare_the_right_cells() {
        let results = [
            result(TargetKind::Quarryd, Op::GetWarm, LARGE, 900, 70),
            result(TargetKind::Plain, Op::GetWarm, LARGE, 9000, 7),
            result(TargetKind::Quarryd, Op::GetCold, LARGE, 850, 75),
            result(TargetKind::Plain, Op::GetCold, LARGE, 1000, 60),
            result(TargetKind::Quarryd, Op::GetWarm, SMALL, 1, 1),
            result(TargetKind::Ceph, Op::GetWarm, SMALL, 1, 3),
            result(TargetKind::CephDefault, Op::GetWarm, SMALL, 1, 40),
            result(TargetKind::Quarryd, Op::Put, SMALL, 1, 2),
            result(TargetKind::Ceph, Op::Put, SMALL, 1, 3),
        ];
        let ratios = compute(&results, &[1], Some(&facts()), true);
        let get = |name| find(&ratios, name);

        let cold = get("get_64MiB_cold_vs_plain_cold_c1");
        assert_eq!((cold.value, cold.status), (Some(0.85), Verdict::Pass));
        let warm = get("get_64MiB_warm_vs_plain_warm_c1");
        assert_eq!((warm.value, warm.status), (Some(0.1), Verdict::Info));
        let small_get = get("ceph_vs_quarryd_4KiB_get_p50_c1");
        assert_eq!(
            (small_get.value, small_get.status),
            (Some(3.0), Verdict::Pass)
        );
        let small_put = get("ceph_vs_quarryd_4KiB_put_p50_c1");
        assert_eq!(
            (small_put.value, small_put.status),
            (Some(1.5), Verdict::Fail)
        );
        let default_get = get("ceph_default_vs_quarryd_4KiB_get_p50_c1");
        assert_eq!(
            (default_get.value, default_get.status),
            (Some(40.0), Verdict::Info)
        );
        let rss = get("quarryd_idle_rss_mib");
        assert_eq!((rss.value, rss.status), (Some(12.5), Verdict::Pass));
        let write = get("quarryd_put_64MiB_throughput_vs_plain_fsync_write_c1");
        assert_eq!(write.status, Verdict::NotMeasured);
        assert!(
            write
                .reason
                .as_deref()
                .unwrap()
                .contains("quarryd put 64MiB x1")
        );
    }

    #[test]
    fn cold_ratio_needs_working_eviction() {
        let mut results = vec![
            result(TargetKind::Quarryd, Op::GetCold, LARGE, 850, 75),
            result(TargetKind::Plain, Op::GetCold, LARGE, 1000, 60),
        ];
        let name = "get_64MiB_cold_vs_plain_cold_c1";
        let broken = compute(&results, &[1], None, false);
        let cold = find(&broken, name);
        assert_eq!((cold.value, cold.status), (None, Verdict::NotMeasured));
        assert!(cold.reason.as_deref().unwrap().contains("eviction"));

        results[1].eviction = Some(EvictionCheck {
            files: 1,
            probed_pages: 3,
            cached_after_first_eviction: 2,
            cached_after_eviction: 2,
        });
        let still_cached = compute(&results, &[1], None, true);
        let cold = find(&still_cached, name);
        assert_eq!(cold.status, Verdict::NotMeasured);
        assert!(cold.reason.as_deref().unwrap().contains("2 of 3"));
    }

    #[test]
    fn missing_peer_is_not_measured_never_pass() {
        let results = [result(TargetKind::Quarryd, Op::GetWarm, SMALL, 1, 1)];
        let ratios = compute(&results, &[1, 32], None, true);
        assert!(ratios.iter().all(|r| r.status == Verdict::NotMeasured));
        assert_eq!(ratios.len(), 21);
    }
}
