// SPDX-License-Identifier: Apache-2.0
//! `quarry kernel ls|show|register|rm`, over the admin API (`/v1/kernels`).

use std::path::Path;

use bytesize::ByteSize;
use quarry_interceptor::functions::user_kernels::MAX_KERNEL_BYTES;
use quarry_interceptor::functions::{KernelListing, UserKernelRecord};
use reqwest::Method;

use super::admin::AdminClient;
use super::s3::print_stdout;
use super::table;
use super::{CliError, KernelCommand};

/// Runs one `quarry kernel` subcommand.
pub(crate) async fn run(admin: &AdminClient, command: &KernelCommand) -> Result<(), CliError> {
    match command {
        KernelCommand::Ls { params } => {
            let kernels: Vec<KernelListing> = admin.get("/v1/kernels").await?;
            print_stdout(&kernel_table(&kernels));
            if *params {
                print_stdout(&param_table(&kernels));
            }
            Ok(())
        }
        KernelCommand::Show { name } => {
            print_stdout(&admin.get_text(&format!("/v1/kernels/{name}")).await?);
            Ok(())
        }
        KernelCommand::Register {
            name,
            file,
            shape,
            framing,
            summary,
            binary_for,
        } => {
            let code = read_code(file).await?;
            let mut query = vec![
                ("shape", shape.clone()),
                ("framing", framing.clone()),
                ("summary", summary.clone()),
            ];
            if let Some(device) = binary_for {
                query.push(("binary_for", device.clone()));
            }
            let body = admin
                .send(Method::PUT, &format!("/v1/kernels/{name}"), |r| {
                    r.query(&query).body(code)
                })
                .await?;
            let record: UserKernelRecord = super::admin::decode(&body)?;
            print_stdout(&format!(
                "registered kernel {} ({}, framing {}, {}, sha256 {})\n",
                record.name,
                record.shape,
                record.framing,
                ByteSize::b(record.size),
                &record.sha256[..12.min(record.sha256.len())]
            ));
            Ok(())
        }
        KernelCommand::Rm { name } => {
            admin
                .send(Method::DELETE, &format!("/v1/kernels/{name}"), |r| r)
                .await?;
            print_stdout(&format!("removed kernel {name}\n"));
            Ok(())
        }
    }
}

async fn read_code(file: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = tokio::fs::read(file).await.map_err(|source| CliError::Io {
        op: "read",
        path: file.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_KERNEL_BYTES {
        return Err(CliError::Usage(format!(
            "{} is {}; a kernel may be at most {}",
            file.display(),
            ByteSize::b(bytes.len() as u64),
            ByteSize::b(MAX_KERNEL_BYTES as u64)
        )));
    }
    Ok(bytes)
}

fn kernel_table(kernels: &[KernelListing]) -> String {
    let rows: Vec<Vec<String>> = kernels
        .iter()
        .map(|k| {
            let variants: Vec<&str> = [("cpu", k.cpu), ("opencl", k.opencl)]
                .iter()
                .filter(|(_, has)| *has)
                .map(|(name, _)| *name)
                .collect();
            vec![
                k.name.clone(),
                k.origin.clone(),
                k.shape.clone(),
                variants.join(","),
                k.summary.clone(),
            ]
        })
        .collect();
    table::render(&["NAME", "ORIGIN", "SHAPE", "VARIANTS", "SUMMARY"], &rows)
}

fn param_table(kernels: &[KernelListing]) -> String {
    let rows: Vec<Vec<String>> = kernels
        .iter()
        .flat_map(|k| {
            k.params.iter().map(|p| {
                vec![
                    k.name.clone(),
                    p.name.clone(),
                    p.ty.clone(),
                    p.default.clone().unwrap_or_else(|| "(required)".to_owned()),
                    p.doc.clone(),
                ]
            })
        })
        .collect();
    format!(
        "\n{}",
        table::render(&["KERNEL", "PARAM", "TYPE", "DEFAULT", "MEANING"], &rows)
    )
}
