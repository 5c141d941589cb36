// SPDX-License-Identifier: Apache-2.0
//! `quarry trigger add|ls|rm`, over the admin API (`/v1/triggers`).

use std::collections::BTreeMap;

use quarry_interceptor::triggers::{RangePolicy, TriggerRecord, TriggerSpec};
use reqwest::Method;

use super::admin::{AdminClient, decode};
use super::s3::print_stdout;
use super::table;
use super::{CliError, RangeArg, TriggerCommand};

/// Runs one `quarry trigger` subcommand.
pub(crate) async fn run(admin: &AdminClient, command: &TriggerCommand) -> Result<(), CliError> {
    match command {
        TriggerCommand::Add {
            bucket,
            event,
            functions,
            prefix,
            suffix,
            params,
            range,
            backend_class,
        } => {
            let spec = TriggerSpec {
                bucket: bucket.clone(),
                event: *event,
                prefix: prefix.clone(),
                suffix: suffix.clone(),
                functions: functions.clone(),
                params: params.iter().cloned().collect::<BTreeMap<_, _>>(),
                range: match range {
                    RangeArg::Refuse => RangePolicy::Refuse,
                    RangeArg::Transformed => RangePolicy::Transformed,
                },
                backend_class: backend_class.clone(),
            };
            let json = serde_json::to_vec(&spec)
                .map_err(|e| CliError::Usage(format!("cannot encode the trigger: {e}")))?;
            let body = admin
                .send(Method::POST, "/v1/triggers", |r| {
                    r.header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(json)
                })
                .await?;
            let record: TriggerRecord = decode(&body)?;
            // Only the id, so that scripts can capture it.
            print_stdout(&format!("{}\n", record.id));
            Ok(())
        }
        TriggerCommand::Ls => {
            let records: Vec<TriggerRecord> = admin.get("/v1/triggers").await?;
            print_stdout(&trigger_table(&records));
            Ok(())
        }
        TriggerCommand::Rm { id } => {
            let body = admin
                .send(Method::DELETE, &format!("/v1/triggers/{id}"), |r| r)
                .await?;
            let record: TriggerRecord = decode(&body)?;
            print_stdout(&format!("removed trigger {}\n", record.id));
            Ok(())
        }
    }
}

fn trigger_table(records: &[TriggerRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|t| {
            let params = t
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                t.id.to_string(),
                t.bucket.clone(),
                t.event.to_string(),
                format!("{}*{}", t.prefix, t.suffix),
                t.functions.join(","),
                match t.range {
                    RangePolicy::Refuse => "refuse".to_owned(),
                    RangePolicy::Transformed => "transformed".to_owned(),
                },
                table::or_dash(&params),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "BUCKET",
            "EVENT",
            "KEYS",
            "FUNCTIONS",
            "RANGE",
            "PARAMS",
        ],
        &rows,
    )
}
