// SPDX-License-Identifier: Apache-2.0
//! Inputs of the `kernels` scenario, generated from fixed seeds so every run reads the same
//! bytes: text lines (the `functions` corpus), CSV rows of an access log (some quoted fields
//! holding commas, doubled quotes and newlines) and the same log as JSON lines.

/// The kind of input a kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Corpus {
    /// Lines of words (about 14% hold `banana`).
    Text,
    /// CSV with a header `id,status,bytes,path,agent`; about 5% of rows have status 500.
    Csv,
    /// JSON objects, one per line, with the CSV's fields; about 5% have `"status":500`.
    Jsonl,
}

impl Corpus {
    /// `len` bytes of this corpus (the last record is cut where the length ends).
    pub fn generate(self, len: usize) -> Vec<u8> {
        match self {
            Self::Text => crate::scenario::functions::corpus::generate(len),
            Self::Csv => rows(len, true),
            Self::Jsonl => rows(len, false),
        }
    }
}

const PATHS: [&str; 8] = [
    "/",
    "/index.html",
    "/api/v1/items",
    "/api/v1/items/42",
    "/static/app.js",
    "/login",
    "/search?q=banana",
    "/health",
];
const AGENTS: [&str; 4] = [
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "aws-cli/2.15, botocore",
    "say \"\"hi\"\"\nbot",
];
const STATUS: [u32; 20] = [
    200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 404, 404, 403,
    500,
];

fn rows(len: usize, csv: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    if csv {
        out.extend_from_slice(b"id,status,bytes,path,agent\n");
    }
    let mut id = 0u64;
    while out.len() < len {
        let r = next();
        let status = STATUS[(r % 20) as usize];
        let bytes = (r >> 8) % 100_000;
        let path = PATHS[((r >> 32) % 8) as usize];
        let agent = AGENTS[((r >> 40) % 4) as usize];
        if csv {
            out.extend_from_slice(format!("{id},{status},{bytes},{path},\"{agent}\"\n").as_bytes());
        } else {
            let agent = agent.replace("\"\"", "\\\"").replace('\n', "\\n");
            out.extend_from_slice(
                format!(
                    "{{\"id\":{id},\"status\":{status},\"bytes\":{bytes},\"path\":\"{path}\",\"agent\":\"{agent}\"}}\n"
                )
                .as_bytes(),
            );
        }
        id += 1;
    }
    out.truncate(len);
    out
}
