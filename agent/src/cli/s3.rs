// SPDX-License-Identifier: Apache-2.0
//! A small S3 client for the CLI: requests presigned with rusty-s3, sent with reqwest.

use std::time::Duration;

use rusty_s3::actions::{CreateBucket, DeleteBucket, DeleteObject, ListObjectsV2};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use super::target::ObjectPath;
use super::{Cli, CliError};
use crate::credentials::{ENV_ACCESS_KEY, ENV_SECRET_KEY, stored_root};

/// How long a presigned request stays valid; long enough for a slow upload to start.
const PRESIGN_TTL: Duration = Duration::from_secs(3600);
/// Region quarryd answers for.
const REGION: &str = "us-east-1";

/// An S3 endpoint with credentials.
#[derive(Debug)]
pub(crate) struct S3Client {
    pub(crate) http: reqwest::Client,
    endpoint: Url,
    credentials: Credentials,
}

impl S3Client {
    /// Builds a client from flags, environment, or a local node's generated keys.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, CliError> {
        let endpoint = Url::parse(&cli.endpoint).map_err(|e| {
            CliError::Usage(format!("--endpoint {:?} is not a URL: {e}", cli.endpoint))
        })?;
        let (access, secret) = match (&cli.access_key, &cli.secret_key) {
            (Some(a), Some(s)) => (a.clone(), s.clone()),
            _ => match (std::env::var(ENV_ACCESS_KEY), std::env::var(ENV_SECRET_KEY)) {
                (Ok(a), Ok(s)) if !a.is_empty() && !s.is_empty() => (a, s),
                _ => {
                    let stored =
                        stored_root(&cli.data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
                    let (a, s) = stored.ok_or_else(|| {
                        CliError::Usage(format!(
                            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run on the node \
                             with --data-dir pointing at quarryd's data directory (looked in {})",
                            cli.data_dir.display()
                        ))
                    })?;
                    (a, s.expose().to_owned())
                }
            },
        };
        Ok(Self {
            http: reqwest::Client::new(),
            endpoint,
            credentials: Credentials::new(access, secret),
        })
    }

    pub(crate) fn bucket(&self, name: &str) -> Result<Bucket, CliError> {
        Bucket::new(
            self.endpoint.clone(),
            UrlStyle::Path,
            name.to_owned(),
            REGION,
        )
        .map_err(|e| CliError::Usage(format!("bad endpoint or bucket name {name:?}: {e}")))
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub(crate) fn presign<'a>(&self, action: &impl S3Action<'a>) -> Url {
        action.sign(PRESIGN_TTL)
    }

    /// Sends a request and turns an error response into [`CliError::Server`].
    pub(crate) async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CliError> {
        let url = self.endpoint.to_string();
        let resp = req.send().await.map_err(|source| CliError::Http {
            url: url.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(CliError::Server {
            code: xml_field(&body, "Code").unwrap_or_else(|| status.to_string()),
            message: xml_field(&body, "Message").unwrap_or_default(),
        })
    }

    pub(crate) async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        recursive: bool,
    ) -> Result<(), CliError> {
        let b = self.bucket(bucket)?;
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&b, Some(&self.credentials));
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if !recursive {
                action.with_delimiter("/");
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = self.presign(&action);
            let resp = self.send(self.http.get(url)).await?;
            let url = self.endpoint.to_string();
            let text = resp
                .text()
                .await
                .map_err(|source| CliError::Http { url, source })?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| {
                CliError::Usage(format!(
                    "the server sent a listing this client cannot read: {e}"
                ))
            })?;
            let mut out = String::new();
            for p in &page.common_prefixes {
                out.push_str(&format!("{:>12}  {:<24}  {}\n", "PRE", "", p.prefix));
            }
            for o in &page.contents {
                out.push_str(&format!(
                    "{:>12}  {:<24}  {}\n",
                    o.size, o.last_modified, o.key
                ));
            }
            print_stdout(&out);
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    pub(crate) async fn delete_object(&self, path: &ObjectPath) -> Result<(), CliError> {
        let b = self.bucket(&path.bucket)?;
        let url = self.presign(&DeleteObject::new(&b, Some(&self.credentials), &path.key));
        self.send(self.http.delete(url)).await?;
        print_stdout(&format!("deleted {}/{}\n", path.bucket, path.key));
        Ok(())
    }

    pub(crate) async fn create_bucket(&self, name: &str) -> Result<(), CliError> {
        let b = self.bucket(name)?;
        let url = self.presign(&CreateBucket::new(&b, &self.credentials));
        self.send(self.http.put(url)).await?;
        print_stdout(&format!("created bucket {name}\n"));
        Ok(())
    }

    pub(crate) async fn delete_bucket(&self, name: &str) -> Result<(), CliError> {
        let b = self.bucket(name)?;
        let url = self.presign(&DeleteBucket::new(&b, &self.credentials));
        self.send(self.http.delete(url)).await?;
        print_stdout(&format!("deleted bucket {name}\n"));
        Ok(())
    }
}

/// Extracts `<name>value</name>` from an S3 error document, with XML escapes undone.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The CLI's output channel (the `print_stdout` lint guards library code, not this).
#[allow(clippy::print_stdout, reason = "the CLI's results go to stdout")]
pub(crate) fn print_stdout(s: &str) {
    print!("{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_are_extracted() {
        let body = "<Error><Code>NoSuchKey</Code><Message>key k does not exist</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(
            xml_field(body, "Message").as_deref(),
            Some("key k does not exist")
        );
        assert_eq!(xml_field(body, "Resource"), None);
        let body = "<Message>no function named &quot;f&quot; &amp; &lt;more&gt;</Message>";
        assert_eq!(
            xml_field(body, "Message").as_deref(),
            Some("no function named \"f\" & <more>")
        );
    }
}
