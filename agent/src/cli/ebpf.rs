// SPDX-License-Identifier: Apache-2.0
//! `quarry ebpf ls|show|register|rm`, over the admin API (`/v1/ebpf`).

use std::path::Path;

use bytesize::ByteSize;
use quarry_interceptor::functions::{EbpfListing, UserEbpfRecord};
use reqwest::Method;

use super::admin::AdminClient;
use super::s3::print_stdout;
use super::table;
use super::{CliError, EbpfCommand};

/// Largest object sent (the node refuses larger ones too).
const MAX_OBJECT_BYTES: usize = 1 << 20;

/// Runs one `quarry ebpf` subcommand.
pub(crate) async fn run(admin: &AdminClient, command: &EbpfCommand) -> Result<(), CliError> {
    match command {
        EbpfCommand::Ls => {
            let programs: Vec<EbpfListing> = admin.get("/v1/ebpf").await?;
            print_stdout(&program_table(&programs));
            Ok(())
        }
        EbpfCommand::Show { name } => {
            print_stdout(&admin.get_text(&format!("/v1/ebpf/{name}")).await?);
            Ok(())
        }
        EbpfCommand::Register {
            name,
            file,
            shape,
            framing,
            summary,
            params,
        } => {
            let elf = read_object(file).await?;
            let mut query = vec![
                ("shape", shape.clone()),
                ("framing", framing.clone()),
                ("summary", summary.clone()),
            ];
            if !params.is_empty() {
                query.push(("params", params.join(",")));
            }
            let body = admin
                .send(Method::PUT, &format!("/v1/ebpf/{name}"), |r| {
                    r.query(&query).body(elf)
                })
                .await?;
            let record: UserEbpfRecord = super::admin::decode(&body)?;
            print_stdout(&format!(
                "registered eBPF program {} ({}, framing {}, {} instructions, {}, sha256 {})\n",
                record.name,
                record.shape,
                record.framing,
                record.instructions,
                ByteSize::b(record.size),
                &record.sha256[..12.min(record.sha256.len())]
            ));
            Ok(())
        }
        EbpfCommand::Rm { name } => {
            admin
                .send(Method::DELETE, &format!("/v1/ebpf/{name}"), |r| r)
                .await?;
            print_stdout(&format!("removed eBPF program {name}\n"));
            Ok(())
        }
    }
}

async fn read_object(file: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = tokio::fs::read(file).await.map_err(|source| CliError::Io {
        op: "read",
        path: file.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(CliError::Usage(format!(
            "{} is {}; an eBPF program may be at most {}",
            file.display(),
            ByteSize::b(bytes.len() as u64),
            ByteSize::b(MAX_OBJECT_BYTES as u64)
        )));
    }
    Ok(bytes)
}

fn program_table(programs: &[EbpfListing]) -> String {
    let rows: Vec<Vec<String>> = programs
        .iter()
        .map(|p| {
            let params: Vec<&str> = p.params.iter().map(|q| q.name.as_str()).collect();
            vec![
                p.name.clone(),
                if p.available {
                    p.origin.clone()
                } else {
                    format!("{} (absent)", p.origin)
                },
                p.shape.clone(),
                p.framing.clone(),
                p.instructions.to_string(),
                params.join(","),
                p.summary.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME", "ORIGIN", "SHAPE", "FRAMING", "INSNS", "PARAMS", "SUMMARY",
        ],
        &rows,
    )
}
