// SPDX-License-Identifier: Apache-2.0
//! `quarry invoke BUCKET/KEY --function NAME[,NAME2]`: a GET of the object through functions,
//! like any S3 client would send it (`x-quarry-function` and `x-quarry-param-<name>` headers
//! on a presigned URL). The output streams to stdout; an S3 error prints its code and message.

use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rusty_s3::actions::GetObject;
use tokio::io::AsyncWriteExt;

use super::CliError;
use super::s3::S3Client;
use super::target::ObjectPath;

/// Header naming the functions to run.
const FUNCTION_HEADER: &str = "x-quarry-function";
/// Prefix of the parameter headers.
const PARAM_PREFIX: &str = "x-quarry-param-";

/// GETs `source` through `functions` with `params`, writing the body to stdout.
pub(crate) async fn invoke(
    client: &S3Client,
    source: &ObjectPath,
    functions: &[String],
    params: &[(String, String)],
) -> Result<(), CliError> {
    let headers = invocation_headers(functions, params)?;
    let bucket = client.bucket(&source.bucket)?;
    let url = client.presign(&GetObject::new(
        &bucket,
        Some(client.credentials()),
        &source.key,
    ));
    let resp = client.send(client.http.get(url).headers(headers)).await?;
    let mut out = tokio::io::stdout();
    let io = |source| CliError::Io {
        op: "write",
        path: "<stdout>".into(),
        source,
    };
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| CliError::Http {
            url: source.url().map(ToString::to_string).unwrap_or_default(),
            source,
        })?;
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)
}

/// The headers that ask for `functions` with `params` (header names are lowercase).
fn invocation_headers(
    functions: &[String],
    params: &[(String, String)],
) -> Result<HeaderMap, CliError> {
    if functions.is_empty() || functions.iter().any(String::is_empty) {
        return Err(CliError::Usage(
            "--function names no function; write --function NAME[,NAME2...]".to_owned(),
        ));
    }
    let mut headers = HeaderMap::new();
    let value = |s: &str, what: &str| {
        HeaderValue::from_str(s).map_err(|_| {
            CliError::Usage(format!(
                "{what} {s:?} cannot be sent as a header; use printable ASCII"
            ))
        })
    };
    headers.insert(
        HeaderName::from_static(FUNCTION_HEADER),
        value(&functions.join(","), "--function")?,
    );
    for (k, v) in params {
        let name = format!("{PARAM_PREFIX}{}", k.to_ascii_lowercase());
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            CliError::Usage(format!(
                "--param name {k:?} cannot be sent as a header; use letters, digits, '-' and '_'"
            ))
        })?;
        headers.insert(name, value(v, "--param value")?);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_chain_and_lowercased_params() {
        let h = invocation_headers(
            &["thumb".into(), "watermark".into()],
            &[("Width".into(), "200".into())],
        )
        .unwrap();
        assert_eq!(h["x-quarry-function"], "thumb,watermark");
        assert_eq!(h["x-quarry-param-width"], "200");
    }

    #[test]
    fn unsendable_params_are_usage_errors() {
        assert!(invocation_headers(&["f".into()], &[("a b".into(), "1".into())]).is_err());
        assert!(invocation_headers(&["f".into()], &[("a".into(), "line\nbreak".into())]).is_err());
        assert!(invocation_headers(&[], &[]).is_err());
    }
}
