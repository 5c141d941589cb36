// SPDX-License-Identifier: Apache-2.0
//! `csv-filter`: the CSV rows whose field matches a predicate, verbatim or projected onto
//! chosen columns.
//!
//! Column names resolve against the header, the first row of the job, when the first chunk
//! arrives (on the host for a device run); the header is emitted first, projected like the
//! rows. CPU: one pass of block masks over the chunk (`csv::for_each_row`) finds the rows and
//! the fields they need.
//! Device: `CountEmit` with the quote-parity SCAN of `csv_common.cl`; the header row is never
//! uploaded (the plan of the first chunk starts after it).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::csv::{self, ColumnRef, for_each_row, header_names, row_end, scan_row, unescape};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};
use crate::predicate::{OP_WORDS, Predicate, push_u32};

#[cfg(test)]
mod tests;

/// The `csv-filter` kernel.
#[derive(Debug)]
pub struct CsvFilter;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "column",
        ty: ParamType::Text,
        default: None,
        doc: "the column compared: a header name, or #N (0-based index)",
    },
    ParamSpec {
        name: "op",
        ty: ParamType::Choice(OP_WORDS),
        default: Some("eq"),
        doc: "how the field is compared with value: eq, ne, lt, le, gt, ge or contains",
    },
    ParamSpec {
        name: "value",
        ty: ParamType::Text,
        default: None,
        doc: "what the field is compared with",
    },
    ParamSpec {
        name: "numeric",
        ty: ParamType::Bool,
        default: Some("false"),
        doc: "compare as fixed-point decimals; rows whose field is not a number do not match",
    },
    ParamSpec {
        name: "select",
        ty: ParamType::Text,
        default: Some(""),
        doc: "comma-separated columns (names or #N) to emit, in this order; empty: whole rows",
    },
    ParamSpec {
        name: "header",
        ty: ParamType::Bool,
        default: Some("true"),
        doc: "the first row is a header: it names the columns and is emitted first",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("csv-filter"),
    summary: Cow::Borrowed("CSV rows whose field matches a comparison, optionally projected"),
    shape: Shape::Filter,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-csv-filter",
    source: concat!(
        include_str!("../csv_common.cl"),
        include_str!("csv_filter.cl")
    ),
    options: "",
};

impl Kernel for CsvFilter {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let select = match params.text("select")?.trim() {
            "" => None,
            list => Some(ColumnRef::parse_list("select", list)?),
        };
        let spec = Spec {
            column: ColumnRef::parse("column", params.text("column")?)?,
            select,
            predicate: Predicate::new(
                ["op", "value", "numeric"],
                params.text("op")?,
                params.text("value")?,
                params.bool("numeric")?,
            )?,
            header: params.bool("header")?,
        };
        // Without a header, names cannot resolve: refuse them now, not at the first chunk.
        let resolved = (!spec.header).then(|| spec.resolve(None)).transpose()?;
        Ok(Arc::new(BoundCsvFilter {
            spec: Arc::new(spec),
            resolved,
        }))
    }
}

/// The bound parameters.
#[derive(Debug)]
struct Spec {
    column: ColumnRef,
    select: Option<Vec<ColumnRef>>,
    predicate: Predicate,
    header: bool,
}

/// Column indexes, once the header (if any) is known.
#[derive(Debug, Clone)]
struct Resolved {
    column: usize,
    select: Option<Vec<usize>>,
    /// The last field a row must be split up to.
    last: usize,
}

impl Spec {
    fn resolve(&self, header: Option<&[String]>) -> Result<Resolved, KernelError> {
        let column = self.column.resolve("column", header)?;
        let select = self
            .select
            .as_ref()
            .map(|cols| {
                cols.iter()
                    .map(|c| c.resolve("select", header))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let last = select.iter().flatten().copied().fold(column, usize::max);
        Ok(Resolved {
            column,
            select,
            last,
        })
    }

    /// Reads the header row at the start of `chunk`: the resolved columns, the header's
    /// output, and where the first data row starts.
    fn read_header(&self, chunk: &[u8]) -> Result<(Resolved, Vec<u8>, usize), KernelError> {
        let end = row_end(chunk, 0);
        let resolved = self.resolve(Some(&header_names(&chunk[..end])))?;
        let mut out = Vec::new();
        let mut fields = Vec::new();
        scan_row(chunk, 0, resolved.last, &mut fields);
        emit_row(chunk, 0..end, &fields, resolved.select.as_deref(), &mut out);
        Ok((resolved, out, end))
    }
}

/// Appends a kept row: verbatim (`select` is `None`), or its selected fields as written,
/// joined by `,` and ended by `\n` (a missing field is empty).
fn emit_row(
    chunk: &[u8],
    row: Range<usize>,
    fields: &[Range<usize>],
    select: Option<&[usize]>,
    out: &mut Vec<u8>,
) {
    let Some(select) = select else {
        out.extend_from_slice(&chunk[row]);
        return;
    };
    for (j, &col) in select.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        if let Some(field) = fields.get(col) {
            out.extend_from_slice(&chunk[field.clone()]);
        }
    }
    out.push(b'\n');
}

#[derive(Debug)]
struct BoundCsvFilter {
    spec: Arc<Spec>,
    /// Set at bind when there is no header.
    resolved: Option<Resolved>,
}

impl BoundKernel for BoundCsvFilter {
    fn framing(&self) -> Framing {
        Framing::CsvRows
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(CsvFilterCpu {
            spec: Arc::clone(&self.spec),
            resolved: self.resolved.clone(),
            fields: Vec::new(),
            scratch: Vec::new(),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(CsvFilterDevice {
            spec: Arc::clone(&self.spec),
            consts: None,
            pending_header: None,
            resolved: self.resolved.clone(),
        }))
    }
}

// === CPU ===

struct CsvFilterCpu {
    spec: Arc<Spec>,
    resolved: Option<Resolved>,
    fields: Vec<Range<usize>>,
    scratch: Vec<u8>,
}

impl CpuRun for CsvFilterCpu {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        let mut pos = 0;
        let resolved = match &self.resolved {
            Some(r) => r,
            None if chunk.is_empty() => return Ok(()),
            None => {
                let (resolved, header_out, end) = self.spec.read_header(chunk)?;
                out.extend_from_slice(&header_out);
                pos = end;
                self.resolved.insert(resolved)
            }
        };
        let predicate = &self.spec.predicate;
        let scratch = &mut self.scratch;
        for_each_row(
            chunk,
            pos,
            resolved.last,
            &mut self.fields,
            |row, fields| {
                let Some(field) = fields.get(resolved.column) else {
                    return;
                };
                if predicate.matches(unescape(&chunk[field.clone()], scratch)) {
                    emit_row(chunk, row, fields, resolved.select.as_deref(), out);
                }
            },
        );
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

// === device ===

struct CsvFilterDevice {
    spec: Arc<Spec>,
    resolved: Option<Resolved>,
    /// Packed once the columns are resolved.
    consts: Option<Vec<u8>>,
    /// The header's output, passed on before the first chunk's rows.
    pending_header: Option<Vec<u8>>,
}

impl CsvFilterDevice {
    /// `consts`: the predicate, the selected columns, the value (see `csv_filter.cl`).
    fn pack(&self, resolved: &Resolved) -> Result<Vec<u8>, KernelError> {
        let mut consts = Vec::new();
        let predicate = &self.spec.predicate;
        predicate.push_device_header(resolved.column, &mut consts)?;
        let select = resolved.select.as_deref().unwrap_or(&[]);
        push_u32(&mut consts, select.len())?;
        for &col in select {
            push_u32(&mut consts, col)?;
        }
        consts.extend_from_slice(predicate.value_bytes());
        Ok(consts)
    }
}

impl DeviceRun for CsvFilterDevice {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        let mut skip = 0;
        if self.resolved.is_none() && !chunk.is_empty() {
            let (resolved, header_out, end) = self.spec.read_header(chunk)?;
            self.resolved = Some(resolved);
            self.pending_header = Some(header_out);
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
                count: "csv_filter_count",
                emit: "csv_filter_emit",
                items: csv::block_items(chunk.len() - skip),
            },
        })
    }

    fn accept(
        &mut self,
        _chunk: &[u8],
        device_out: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        if let Some(header) = self.pending_header.take() {
            out.extend_from_slice(&header);
        }
        out.extend_from_slice(device_out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}
