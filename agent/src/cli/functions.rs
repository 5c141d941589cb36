// SPDX-License-Identifier: Apache-2.0
//! `quarry fn deploy|ls|show|rm`, over the admin API (`/v1/functions`).

use std::path::Path;

use bytesize::ByteSize;
use quarry_interceptor::functions::{FunctionError, FunctionRecord, valid_name};
use quarry_interceptor::triggers::TriggerRecord;
use reqwest::Method;

use super::admin::{AdminClient, decode};
use super::s3::print_stdout;
use super::table;
use super::{CliError, FunctionCommand};
use crate::admin::{FunctionDetails, MAX_PACKAGE_BYTES};

/// Runs one `quarry fn` subcommand.
pub(crate) async fn run(admin: &AdminClient, command: &FunctionCommand) -> Result<(), CliError> {
    if let FunctionCommand::Deploy { name, .. }
    | FunctionCommand::Show { name, .. }
    | FunctionCommand::Rm { name } = command
        && !valid_name(name)
    {
        // Checked here too, so that no name can change the request's path.
        let error = FunctionError::BadName { name: name.clone() };
        return Err(CliError::Usage(error.to_string()));
    }
    match command {
        FunctionCommand::Deploy {
            name,
            file,
            kernel,
            ebpf,
            backend_class,
            memory,
            timeout,
            params,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(memory) = memory {
                query.push(("memory", memory.clone()));
            }
            if let Some(timeout) = timeout {
                query.push(("timeout", timeout.clone()));
            }
            for (k, v) in params {
                query.push(("param", format!("{k}={v}")));
            }
            if let Some(class) = backend_class {
                query.push(("backend_class", class.clone()));
            }
            if let Some(program) = ebpf {
                query.push(("ebpf", program.clone()));
            }
            let bytes = match (file, kernel) {
                (Some(file), _) => read_package(file).await?,
                (None, Some(kernel)) => {
                    query.push(("kernel", kernel.clone()));
                    Vec::new()
                }
                (None, None) if ebpf.is_some() => Vec::new(),
                (None, None) => {
                    return Err(CliError::Usage(
                        "give the module or package FILE, --kernel NAME or --ebpf PROGRAM"
                            .to_owned(),
                    ));
                }
            };
            deploy(admin, name, bytes, &query).await
        }
        FunctionCommand::Ls => {
            let records: Vec<FunctionRecord> = admin.get("/v1/functions").await?;
            print_stdout(&list_table(&records));
            Ok(())
        }
        FunctionCommand::Show { name, json } => {
            let body = admin.get_text(&format!("/v1/functions/{name}")).await?;
            if *json {
                print_stdout(&format!("{body}\n"));
            } else {
                print_stdout(&details(&decode(&body)?));
            }
            Ok(())
        }
        FunctionCommand::Rm { name } => {
            let body = admin
                .send(Method::DELETE, &format!("/v1/functions/{name}"), |r| r)
                .await?;
            let record: FunctionRecord = decode(&body)?;
            print_stdout(&format!(
                "deleted function {} (v{})\n",
                record.name, record.version
            ));
            Ok(())
        }
    }
}

async fn read_package(file: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = tokio::fs::read(file).await.map_err(|source| CliError::Io {
        op: "read",
        path: file.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_PACKAGE_BYTES {
        return Err(CliError::Usage(format!(
            "{} is {}; a function package may be at most {}",
            file.display(),
            ByteSize::b(bytes.len() as u64),
            ByteSize::b(MAX_PACKAGE_BYTES as u64)
        )));
    }
    Ok(bytes)
}

async fn deploy(
    admin: &AdminClient,
    name: &str,
    bytes: Vec<u8>,
    query: &[(&str, String)],
) -> Result<(), CliError> {
    let body = admin
        .send(Method::PUT, &format!("/v1/functions/{name}"), |r| {
            r.query(query)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes)
        })
        .await?;
    let r: FunctionRecord = decode(&body)?;
    let verb = if r.version == 1 {
        "deployed"
    } else {
        "updated"
    };
    let what = match &r.kernel {
        Some(kernel) => format!("kernel   {kernel}\n"),
        None => format!(
            "sha256   {}\nsize     {}\nmemory   {}\n",
            r.sha256,
            ByteSize::b(r.module_size),
            r.limits.memory
        ),
    };
    print_stdout(&format!(
        "{verb} {} v{}\n{what}timeout  {}\n",
        r.name,
        r.version,
        timeouts(&r),
    ));
    if let Some(class) = &r.backend_class {
        print_stdout(&format!("backend  {class}\n"));
    }
    if !r.params.is_empty() {
        print_stdout(&format!("params   {}\n", params(&r)));
    }
    Ok(())
}

fn list_table(records: &[FunctionRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                format!("v{}", r.version),
                r.kernel.as_ref().map_or_else(
                    || ByteSize::b(r.module_size).to_string(),
                    |k| format!("kernel {k}"),
                ),
                r.limits.memory.to_string(),
                humantime::format_duration(r.limits.timeout).to_string(),
                table::or_dash(&r.description),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "VERSION",
            "MODULE",
            "MEMORY",
            "TIMEOUT",
            "DESCRIPTION",
        ],
        &rows,
    )
}

fn details(d: &FunctionDetails) -> String {
    let r = &d.record;
    let deployed = humantime::format_rfc3339_seconds(r.deployed_at);
    let permissions = if r.permissions.is_empty() {
        "none (input and output only)".to_owned()
    } else {
        r.permissions
            .iter()
            .map(|p| format!("{p:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let triggers = if d.triggers.is_empty() {
        "none".to_owned()
    } else {
        d.triggers
            .iter()
            .map(trigger_summary)
            .collect::<Vec<_>>()
            .join("\n             ")
    };
    let module = match &r.kernel {
        Some(kernel) => format!("kernel       {kernel}\n"),
        None => format!(
            "sha256       {}\nsize         {}\n",
            r.sha256,
            ByteSize::b(r.module_size)
        ),
    };
    format!(
        "name         {}\nversion      {}\ndescription  {}\n{module}backend      {}\n\
         deployed     {deployed}\nmemory       {}\ntimeout      {}\noutput       at most {}\n\
         permissions  {permissions}\nparams       {}\ntriggers     {triggers}\n",
        r.name,
        r.version,
        table::or_dash(&r.description),
        r.backend_class.as_deref().unwrap_or("auto"),
        r.limits.memory,
        timeouts(r),
        r.limits.max_output,
        table::or_dash(&params(r)),
    )
}

fn timeouts(r: &FunctionRecord) -> String {
    format!(
        "{} (cpu {}, first byte {})",
        humantime::format_duration(r.limits.timeout),
        humantime::format_duration(r.limits.cpu_time),
        humantime::format_duration(r.limits.first_byte_timeout)
    )
}

fn params(r: &FunctionRecord) -> String {
    r.params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `3: after-get photos/*.jpg -> thumb,watermark`.
pub(crate) fn trigger_summary(t: &TriggerRecord) -> String {
    format!(
        "{}: {} {}/{}*{} -> {}",
        t.id,
        t.event,
        t.bucket,
        t.prefix,
        t.suffix,
        t.functions.join(",")
    )
}
