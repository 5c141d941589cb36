// SPDX-License-Identifier: Apache-2.0
//! `quarry events ls|retry`, over the admin API (`/v1/events`): the asynchronous event queue
//! and its dead letters.

use quarry_interceptor::events::{EventRecord, EventsView};
use reqwest::Method;

use super::admin::{AdminClient, decode};
use super::s3::print_stdout;
use super::table;
use super::{CliError, EventsCommand};

/// Runs one `quarry events` subcommand.
pub(crate) async fn run(admin: &AdminClient, command: &EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::Ls => {
            let view: EventsView = admin.get("/v1/events").await?;
            print_stdout(&event_table(&view));
            Ok(())
        }
        EventsCommand::Retry { id } => {
            let body = admin
                .send(Method::POST, &format!("/v1/events/{id}/retry"), |r| r)
                .await?;
            let record: EventRecord = decode(&body)?;
            print_stdout(&format!(
                "event {} ({} {}/{}) is queued again\n",
                record.id, record.event, record.bucket, record.key
            ));
            Ok(())
        }
    }
}

fn event_table(view: &EventsView) -> String {
    let rows: Vec<Vec<String>> = view
        .pending
        .iter()
        .chain(&view.dead)
        .map(|e| {
            vec![
                e.id.to_string(),
                format!("{:?}", e.state).to_lowercase(),
                e.event.to_string(),
                format!("{}/{}", e.bucket, e.key),
                e.functions.join(","),
                e.attempts.to_string(),
                table::or_dash(e.last_error.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "STATE",
            "EVENT",
            "OBJECT",
            "FUNCTIONS",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    )
}
