// SPDX-License-Identifier: Apache-2.0
//! `quarry kernel ls`, over the admin API (`/v1/kernels`).

use quarry_interceptor::functions::KernelListing;

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
    }
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
