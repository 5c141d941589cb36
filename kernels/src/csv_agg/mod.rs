// SPDX-License-Identifier: Apache-2.0
//! `csv-agg`: count, exact sum, min, max and average of one CSV column, optionally over the
//! rows that pass a `where_*` comparison.
//!
//! Values parse as fixed-point decimals ([`crate::decimal`], micro-units); a considered row
//! whose field is missing or not a number is counted as `skipped`. The sum is exact: an `i128`
//! on the CPU, and on a device a 128-bit sum kept in two 64-bit words per block, joined on the
//! host. Column names resolve against the header (the first row of the job) when the first
//! chunk arrives. Device: `CountEmit` with the quote-parity SCAN of `csv_common.cl`; every
//! block emits one fixed-size partial (`PARTIAL_BYTES`), which the host adds up.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::csv::{self, ColumnRef, for_each_row, header_names, row_end, unescape};
use crate::decimal::{divide_rounded, format_micros, parse_decimal};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};
use crate::predicate::{OP_WORDS, Predicate, push_u32};

#[cfg(test)]
mod tests;

/// The `csv-agg` kernel.
#[derive(Debug)]
pub struct CsvAgg;

/// The words of the `fn` parameter.
const FN_WORDS: &[&str] = &["all", "count", "sum", "min", "max", "avg"];

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "column",
        ty: ParamType::Text,
        default: None,
        doc: "the column aggregated: a header name, or #N (0-based index)",
    },
    ParamSpec {
        name: "fn",
        ty: ParamType::Choice(FN_WORDS),
        default: Some("all"),
        doc: "what to compute: count, sum, min, max, avg, or all of them",
    },
    ParamSpec {
        name: "where_column",
        ty: ParamType::Text,
        default: Some(""),
        doc: "only rows whose field in this column matches where_op/where_value (empty: all rows)",
    },
    ParamSpec {
        name: "where_op",
        ty: ParamType::Choice(OP_WORDS),
        default: Some("eq"),
        doc: "how the where_column field is compared: eq, ne, lt, le, gt, ge or contains",
    },
    ParamSpec {
        name: "where_value",
        ty: ParamType::Text,
        default: Some(""),
        doc: "what the where_column field is compared with",
    },
    ParamSpec {
        name: "where_numeric",
        ty: ParamType::Bool,
        default: Some("false"),
        doc: "compare the where_column field as a fixed-point decimal",
    },
    ParamSpec {
        name: "header",
        ty: ParamType::Bool,
        default: Some("true"),
        doc: "the first row is a header: it names the columns and is not aggregated",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("csv-agg"),
    summary: Cow::Borrowed("count, sum, min, max and average of a CSV column, optionally filtered"),
    shape: Shape::Reduce,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-csv-agg",
    source: concat!(include_str!("../csv_common.cl"), include_str!("csv_agg.cl")),
    options: "",
};

/// Bytes of one block's partial on the device: count, skipped, sum (low word, high word),
/// min, max; each 8 bytes, little-endian (see `csv_agg.cl`).
const PARTIAL_BYTES: usize = 48;

impl Kernel for CsvAgg {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let filter = match params.text("where_column")?.trim() {
            "" => {
                if !params.text("where_value")?.is_empty() || params.bool("where_numeric")? {
                    return Err(KernelError::param(
                        "where_column",
                        "is empty, so where_value and where_numeric have nothing to compare; \
                         name the column to filter on (a header name or #N)",
                    ));
                }
                None
            }
            column => Some((
                ColumnRef::parse("where_column", column)?,
                Predicate::new(
                    ["where_op", "where_value", "where_numeric"],
                    params.text("where_op")?,
                    params.text("where_value")?,
                    params.bool("where_numeric")?,
                )?,
            )),
        };
        let spec = Spec {
            column: ColumnRef::parse("column", params.text("column")?)?,
            func: Func::parse(params.text("fn")?)?,
            filter,
            header: params.bool("header")?,
        };
        // Without a header, names cannot resolve: refuse them now, not at the first chunk.
        let resolved = (!spec.header).then(|| spec.resolve(None)).transpose()?;
        Ok(Arc::new(BoundCsvAgg {
            spec: Arc::new(spec),
            resolved,
        }))
    }
}

/// What the output reports (`skipped` is always reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    All,
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl Func {
    fn parse(word: &str) -> Result<Self, KernelError> {
        Ok(match word {
            "all" => Self::All,
            "count" => Self::Count,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "avg" => Self::Avg,
            other => {
                return Err(KernelError::param(
                    "fn",
                    format!("{other:?} is not one of {}", FN_WORDS.join(", ")),
                ));
            }
        })
    }

    fn shows(self, line: Self) -> bool {
        self == Self::All || self == line
    }
}

/// The bound parameters.
#[derive(Debug)]
struct Spec {
    column: ColumnRef,
    func: Func,
    filter: Option<(ColumnRef, Predicate)>,
    header: bool,
}

/// Column indexes, once the header (if any) is known.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    column: usize,
    where_column: Option<usize>,
    /// The last field a row must be split up to.
    last: usize,
}

impl Spec {
    fn resolve(&self, header: Option<&[String]>) -> Result<Resolved, KernelError> {
        let column = self.column.resolve("column", header)?;
        let where_column = self
            .filter
            .as_ref()
            .map(|(c, _)| c.resolve("where_column", header))
            .transpose()?;
        Ok(Resolved {
            column,
            where_column,
            last: where_column.map_or(column, |w| w.max(column)),
        })
    }

    /// Reads the header row at the start of `chunk`: the resolved columns and where the first
    /// data row starts.
    fn read_header(&self, chunk: &[u8]) -> Result<(Resolved, usize), KernelError> {
        let end = row_end(chunk, 0);
        Ok((self.resolve(Some(&header_names(&chunk[..end])))?, end))
    }
}

/// The running aggregate (the CPU and the device run keep the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    count: u64,
    skipped: u64,
    sum: i128,
    min: i64,
    max: i64,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            count: 0,
            skipped: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }
}

impl Totals {
    fn add(&mut self, micros: i64) {
        self.count += 1;
        self.sum += i128::from(micros);
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
    }

    fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.skipped += other.skipped;
        self.sum += other.sum;
        if other.count > 0 {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
    }

    /// A block's partial as the device writes it (see [`PARTIAL_BYTES`]).
    fn from_device(partial: &[u8]) -> Self {
        let word = |k: usize| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&partial[8 * k..8 * k + 8]);
            u64::from_le_bytes(bytes)
        };
        let signed = |k: usize| i64::from_le_bytes(word(k).to_le_bytes());
        Self {
            count: word(0),
            skipped: word(1),
            sum: (i128::from(signed(3)) << 64) | i128::from(word(2)),
            min: signed(4),
            max: signed(5),
        }
    }

    /// The output lines `func` asks for, then `skipped`.
    fn render(&self, func: Func, out: &mut Vec<u8>) {
        let has_rows = self.count > 0;
        let extreme = |v: i64| {
            if has_rows {
                format_micros(i128::from(v))
            } else {
                "null".to_owned()
            }
        };
        let mut text = String::new();
        if func.shows(Func::Count) {
            let _ = writeln!(text, "count\t{}", self.count);
        }
        if func.shows(Func::Sum) {
            let _ = writeln!(text, "sum\t{}", format_micros(self.sum));
        }
        if func.shows(Func::Min) {
            let _ = writeln!(text, "min\t{}", extreme(self.min));
        }
        if func.shows(Func::Max) {
            let _ = writeln!(text, "max\t{}", extreme(self.max));
        }
        if func.shows(Func::Avg) {
            let avg = if has_rows {
                format_micros(divide_rounded(self.sum, self.count))
            } else {
                "null".to_owned()
            };
            let _ = writeln!(text, "avg\t{avg}");
        }
        let _ = writeln!(text, "skipped\t{}", self.skipped);
        out.extend_from_slice(text.as_bytes());
    }
}

#[derive(Debug)]
struct BoundCsvAgg {
    spec: Arc<Spec>,
    /// Set at bind when there is no header.
    resolved: Option<Resolved>,
}

impl BoundKernel for BoundCsvAgg {
    fn framing(&self) -> Framing {
        Framing::CsvRows
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(CsvAggCpu {
            spec: Arc::clone(&self.spec),
            resolved: self.resolved,
            totals: Totals::default(),
            fields: Vec::new(),
            scratch: Vec::new(),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(CsvAggDevice {
            spec: Arc::clone(&self.spec),
            resolved: self.resolved,
            consts: None,
            totals: Totals::default(),
        }))
    }
}

// === CPU ===

struct CsvAggCpu {
    spec: Arc<Spec>,
    resolved: Option<Resolved>,
    totals: Totals,
    fields: Vec<Range<usize>>,
    scratch: Vec<u8>,
}

impl CpuRun for CsvAggCpu {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        let mut pos = 0;
        let resolved = match self.resolved {
            Some(r) => r,
            None if chunk.is_empty() => return Ok(()),
            None => {
                let (resolved, end) = self.spec.read_header(chunk)?;
                pos = end;
                *self.resolved.insert(resolved)
            }
        };
        let filter = self.spec.filter.as_ref().map(|(_, p)| p);
        let (scratch, totals) = (&mut self.scratch, &mut self.totals);
        for_each_row(chunk, pos, resolved.last, &mut self.fields, |_, fields| {
            if let (Some(predicate), Some(col)) = (filter, resolved.where_column) {
                let passes = fields
                    .get(col)
                    .is_some_and(|f| predicate.matches(unescape(&chunk[f.clone()], scratch)));
                if !passes {
                    return;
                }
            }
            let value = fields
                .get(resolved.column)
                .and_then(|f| parse_decimal(unescape(&chunk[f.clone()], scratch)));
            match value {
                Some(micros) => totals.add(micros),
                None => totals.skipped += 1,
            }
        });
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.totals.render(self.spec.func, out);
        Ok(())
    }
}

// === device ===

struct CsvAggDevice {
    spec: Arc<Spec>,
    resolved: Option<Resolved>,
    /// Packed once the columns are resolved.
    consts: Option<Vec<u8>>,
    totals: Totals,
}

impl CsvAggDevice {
    /// `consts`: the where predicate (24 bytes, zeros without one), u32 has_where, u32 column,
    /// then the where value's bytes (see `csv_agg.cl`).
    fn pack(&self, resolved: &Resolved) -> Result<Vec<u8>, KernelError> {
        let mut consts = Vec::new();
        match (&self.spec.filter, resolved.where_column) {
            (Some((_, predicate)), Some(col)) => {
                predicate.push_device_header(col, &mut consts)?;
                push_u32(&mut consts, 1)?;
                push_u32(&mut consts, resolved.column)?;
                consts.extend_from_slice(predicate.value_bytes());
            }
            _ => {
                consts.resize(24, 0);
                push_u32(&mut consts, 0)?;
                push_u32(&mut consts, resolved.column)?;
            }
        }
        Ok(consts)
    }
}

impl DeviceRun for CsvAggDevice {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        let mut skip = 0;
        if self.resolved.is_none() && !chunk.is_empty() {
            let (resolved, end) = self.spec.read_header(chunk)?;
            self.resolved = Some(resolved);
            skip = end;
        }
        if self.consts.is_none()
            && let Some(resolved) = &self.resolved
        {
            self.consts = Some(self.pack(resolved)?);
        }
        Ok(ChunkPlan {
            program: &PROGRAM,
            input: skip..chunk.len(),
            consts: self.consts.clone().unwrap_or_default(),
            launch: Launch::CountEmit {
                scan: Some("csv_quote_scan"),
                count: "csv_agg_count",
                emit: "csv_agg_emit",
                items: csv::block_items(chunk.len() - skip),
            },
        })
    }

    fn accept(
        &mut self,
        _chunk: &[u8],
        device_out: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        if !device_out.len().is_multiple_of(PARTIAL_BYTES) {
            return Err(KernelError::Input(format!(
                "the device returned {} bytes, not a whole number of {PARTIAL_BYTES}-byte partials",
                device_out.len()
            )));
        }
        for partial in device_out.chunks_exact(PARTIAL_BYTES) {
            self.totals.merge(&Totals::from_device(partial));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.totals.render(self.spec.func, out);
        Ok(())
    }
}
