// SPDX-License-Identifier: Apache-2.0
//! `quarry put` and `quarry get`: streamed transfers with a progress bar on stderr.
//!
//! Files are never read whole into memory. The bar is drawn only on a terminal.

use std::path::Path;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rusty_s3::actions::{GetObject, PutObject};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::CliError;
use super::s3::{S3Client, print_stdout};
use super::target::ObjectPath;

/// Read size for uploads.
const UPLOAD_CHUNK: usize = 1 << 20;

fn progress_bar(len: u64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{verb} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Uploads `file` to `dest` in one streamed PUT.
pub(crate) async fn put(client: &S3Client, file: &Path, dest: &ObjectPath) -> Result<(), CliError> {
    let io = |op, source| CliError::Io {
        op,
        path: file.to_owned(),
        source,
    };
    let handle = tokio::fs::File::open(file)
        .await
        .map_err(|e| io("open", e))?;
    let len = handle.metadata().await.map_err(|e| io("stat", e))?.len();
    let bucket = client.bucket(&dest.bucket)?;
    let url = client.presign(&PutObject::new(
        &bucket,
        Some(client.credentials()),
        &dest.key,
    ));
    let bar = progress_bar(len, "put");
    let counter = bar.clone();
    let stream = ReaderStream::with_capacity(handle, UPLOAD_CHUNK).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            counter.inc(bytes.len() as u64);
        }
    });
    let req = client
        .http
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(stream));
    let resp = client.send(req).await;
    bar.finish_and_clear();
    let resp = resp?;
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    print_stdout(&format!(
        "uploaded {} ({len} bytes) to {}/{} etag {etag}\n",
        file.display(),
        dest.bucket,
        dest.key
    ));
    Ok(())
}

/// Downloads `source` to `file` (default: the key's last component; `-` for stdout).
pub(crate) async fn get(
    client: &S3Client,
    source: &ObjectPath,
    file: Option<&Path>,
) -> Result<(), CliError> {
    let bucket = client.bucket(&source.bucket)?;
    let url = client.presign(&GetObject::new(
        &bucket,
        Some(client.credentials()),
        &source.key,
    ));
    let resp = client.send(client.http.get(url)).await?;
    let len = resp.content_length().unwrap_or(0);
    let default_name = source
        .key
        .rsplit('/')
        .next()
        .unwrap_or(&source.key)
        .to_owned();
    let path = file.map_or_else(|| Path::new(&default_name).to_owned(), Path::to_owned);
    let to_stdout = path.as_os_str() == "-";
    let io = |op, source| CliError::Io {
        op,
        path: path.clone(),
        source,
    };
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if to_stdout {
        Box::new(tokio::io::stdout())
    } else {
        Box::new(
            tokio::fs::File::create(&path)
                .await
                .map_err(|e| io("create", e))?,
        )
    };
    let bar = progress_bar(len, "get");
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| CliError::Http {
            url: source.url().map(ToString::to_string).unwrap_or_default(),
            source,
        })?;
        out.write_all(&chunk).await.map_err(|e| io("write", e))?;
        bar.inc(chunk.len() as u64);
    }
    out.flush().await.map_err(|e| io("flush", e))?;
    bar.finish_and_clear();
    if !to_stdout {
        print_stdout(&format!(
            "downloaded {}/{} ({len} bytes) to {}\n",
            source.bucket,
            source.key,
            path.display()
        ));
    }
    Ok(())
}
