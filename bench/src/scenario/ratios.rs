// SPDX-License-Identifier: Apache-2.0
//! The ratios of the `s3` scenario, each against its target.
//!
//! - quarryd 64 MiB GET throughput / plain read throughput: at least 0.8 (serving a large
//!   object costs little more than reading the file);
//! - Ceph 4 KiB GET and PUT p50 / quarryd p50: at least 2 (small objects are at least twice
//!   as fast as the peer's);
//! - quarryd idle RSS: at most 30 MiB.
//!
//! One ratio per concurrency level. Reported for context, without a target: the 64 MiB PUT
//! throughput against plain write + fsync, and the loopback ceiling (an HTTP server answering
//! from memory), both as quarryd's share of it and as the highest value the first ratio can
//! reach over HTTP on this machine.

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

/// Computes every ratio from the cells of one run and quarryd's facts.
pub fn compute(
    results: &[CellResult],
    concurrency: &[usize],
    quarryd: Option<&QuarrydFacts>,
) -> Vec<Ratio> {
    use TargetKind::{Ceph, Loopback, Plain, Quarryd};
    let cell = |target, op, size, concurrency| CellKey {
        target,
        op,
        size,
        concurrency,
    };
    let mut ratios = Vec::new();
    for &c in concurrency {
        ratios.push(ratio(
            format!("quarryd_get_64MiB_throughput_vs_plain_read_c{c}"),
            format!("quarryd 64 MiB GET MB/s / plain file read MB/s, concurrency {c}"),
            quotient(
                cell(Quarryd, Op::Get, LARGE, c),
                cell(Plain, Op::Get, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            Some((Comparison::AtLeast, 0.8)),
        ));
    }
    for op in [Op::Get, Op::Put] {
        for &c in concurrency {
            let name = op.as_str();
            ratios.push(ratio(
                format!("ceph_vs_quarryd_4KiB_{name}_p50_c{c}"),
                format!("Ceph 4 KiB {name} p50 / quarryd 4 KiB {name} p50, concurrency {c}"),
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
            format!("quarryd_get_64MiB_throughput_vs_loopback_c{c}"),
            format!("quarryd 64 MiB GET MB/s / in-memory HTTP server GET MB/s, concurrency {c}"),
            quotient(
                cell(Quarryd, Op::Get, LARGE, c),
                cell(Loopback, Op::Get, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            None,
        ));
        ratios.push(ratio(
            format!("loopback_get_64MiB_throughput_vs_plain_read_c{c}"),
            format!(
                "in-memory HTTP server 64 MiB GET MB/s / plain file read MB/s, concurrency {c}: \
                 the ceiling of quarryd_get_64MiB_throughput_vs_plain_read_c{c} over HTTP here"
            ),
            quotient(
                cell(Loopback, Op::Get, LARGE, c),
                cell(Plain, Op::Get, LARGE, c),
                results,
                |r| r.mb_per_s,
            ),
            None,
        ));
    }
    ratios
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

fn ratio(
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

    fn result(target: TargetKind, op: Op, size: u64, mb: u64, p50_ms: u64) -> CellResult {
        // 1 s, so bytes = MB/s * 1e6; every op takes p50_ms.
        let outcome = CellOutcome {
            ops: 1,
            bytes: mb * 1_000_000,
            elapsed: Duration::from_secs(1),
            latencies_ns: vec![p50_ms * 1_000_000],
        };
        CellResult::new(target, op, size, 1, &outcome)
    }

    #[test]
    fn ratios_compare_the_right_cells() {
        let results = [
            result(TargetKind::Quarryd, Op::Get, LARGE, 900, 70),
            result(TargetKind::Plain, Op::Get, LARGE, 1000, 60),
            result(TargetKind::Quarryd, Op::Get, SMALL, 1, 1),
            result(TargetKind::Ceph, Op::Get, SMALL, 1, 3),
            result(TargetKind::Quarryd, Op::Put, SMALL, 1, 2),
            result(TargetKind::Ceph, Op::Put, SMALL, 1, 3),
        ];
        let facts = QuarrydFacts {
            idle: Some(RssSample {
                rss_mib: 12.5,
                peak_rss_mib: 13.0,
            }),
            ..Default::default()
        };
        let ratios = compute(&results, &[1], Some(&facts));
        let get = |name: &str| ratios.iter().find(|r| r.name == name).unwrap();

        let large = get("quarryd_get_64MiB_throughput_vs_plain_read_c1");
        assert_eq!((large.value, large.status), (Some(0.9), Verdict::Pass));
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
    fn missing_peer_is_not_measured_never_pass() {
        let results = [result(TargetKind::Quarryd, Op::Get, SMALL, 1, 1)];
        let ratios = compute(&results, &[1, 32], None);
        assert!(ratios.iter().all(|r| r.status == Verdict::NotMeasured));
        assert_eq!(ratios.len(), 13);
    }
}
