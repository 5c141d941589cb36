// SPDX-License-Identifier: Apache-2.0
//! The short human-readable view of a report, for a terminal.

use std::io::{self, Write};

use super::report::{Comparison, Ratio, Report, TargetStatus};

/// Writes the cells, the ratios and the target notes as aligned text.
pub fn write_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<12} {:<11} {:>6} {:>4} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "target", "op", "size", "conc", "ops", "MB/s", "mean ms", "p50 ms", "p99 ms"
    )?;
    for r in &report.results {
        writeln!(
            out,
            "{:<12} {:<11} {:>6} {:>4} {:>7} {:>10.1} {:>9.3} {:>9.3} {:>9.3}",
            r.target.as_str(),
            r.op.as_str(),
            r.size,
            r.concurrency,
            r.ops,
            r.mb_per_s,
            r.mean_ms,
            r.p50_ms,
            r.p99_ms
        )?;
    }

    writeln!(out)?;
    write_ratios(&report.ratios, out)?;
    writeln!(out)?;
    let pc = &report.page_cache;
    writeln!(
        out,
        "page cache: eviction {} ({} of {} probed pages cached after a read, {} after \
         eviction; warm read {:.1} ms, cold read {:.1} ms){}",
        if pc.eviction_works {
            "works"
        } else {
            "DOES NOT WORK: cold ratios not measured"
        },
        pc.cached_after_read,
        pc.probed_pages,
        pc.cached_after_eviction,
        pc.warm_read_ms,
        pc.cold_read_ms,
        pc.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
    )?;
    for t in &report.targets {
        if let Some(q) = &t.quarryd {
            let mib =
                |rss: Option<f64>| rss.map_or_else(|| "-".to_owned(), |m| format!("{m:.1} MiB"));
            writeln!(
                out,
                "quarryd RSS: idle {}, after run {}, peak {}",
                mib(q.idle.map(|s| s.rss_mib)),
                mib(q.after_run.map(|s| s.rss_mib)),
                mib(q.after_run.map(|s| s.peak_rss_mib)),
            )?;
        }
        if t.status != TargetStatus::Ran {
            let status = if t.status == TargetStatus::Skipped {
                "SKIPPED"
            } else {
                "FAILED"
            };
            writeln!(
                out,
                "{} {status}: {}",
                t.target,
                t.message.as_deref().unwrap_or("")
            )?;
        }
    }
    writeln!(
        out,
        "note: {}",
        report.caveats.first().copied().unwrap_or_default()
    )
}

/// Writes each ratio with its value, target and verdict.
pub fn write_ratios(ratios: &[Ratio], out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<56} {:>9} {:>9}  status",
        "ratio", "value", "target"
    )?;
    for r in ratios {
        let value = r
            .value
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let target = match (r.comparison, r.target) {
            (Some(Comparison::AtLeast), Some(t)) => format!(">= {t}"),
            (Some(Comparison::AtMost), Some(t)) => format!("<= {t}"),
            _ => String::new(),
        };
        let reason = r
            .reason
            .as_deref()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<56} {value:>9} {target:>9}  {}{reason}",
            r.name,
            r.status.as_str().to_uppercase()
        )?;
    }
    Ok(())
}
