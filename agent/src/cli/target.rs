// SPDX-License-Identifier: Apache-2.0
//! `BUCKET/KEY` arguments.

use std::path::Path;

use super::CliError;

/// A bucket and key named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectPath {
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl ObjectPath {
    /// Parses `BUCKET/KEY` (an optional `s3://` prefix is accepted).
    pub(crate) fn parse(s: &str) -> Result<Self, CliError> {
        let (bucket, key) = split_bucket(s)?;
        if key.is_empty() {
            return Err(CliError::Usage(format!(
                "{s:?} names no key; write BUCKET/KEY"
            )));
        }
        Ok(Self { bucket, key })
    }

    /// Parses an upload destination: `BUCKET/` or `BUCKET` takes the file's name as key.
    pub(crate) fn parse_dest(s: &str, file: &Path) -> Result<Self, CliError> {
        let (bucket, key) = split_bucket(s)?;
        if key.is_empty() || key.ends_with('/') {
            let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                CliError::Usage(format!(
                    "{} has no usable file name; give BUCKET/KEY",
                    file.display()
                ))
            })?;
            return Ok(Self {
                bucket,
                key: format!("{key}{name}"),
            });
        }
        Ok(Self { bucket, key })
    }
}

/// Splits `BUCKET[/PREFIX]`.
pub(crate) fn split_bucket(s: &str) -> Result<(String, String), CliError> {
    let s = s.strip_prefix("s3://").unwrap_or(s);
    let (bucket, rest) = s.split_once('/').unwrap_or((s, ""));
    if bucket.is_empty() {
        return Err(CliError::Usage(format!(
            "{s:?} names no bucket; write BUCKET/KEY"
        )));
    }
    Ok((bucket.to_owned(), rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_and_without_scheme() {
        let p = ObjectPath::parse("s3://b/dir/k").unwrap();
        assert_eq!((p.bucket.as_str(), p.key.as_str()), ("b", "dir/k"));
        assert!(ObjectPath::parse("b").is_err());
        assert!(ObjectPath::parse("/k").is_err());
    }

    #[test]
    fn destination_defaults_to_file_name() {
        let p = ObjectPath::parse_dest("b/dir/", Path::new("/tmp/x.bin")).unwrap();
        assert_eq!(p.key, "dir/x.bin");
        let p = ObjectPath::parse_dest("b", Path::new("x.bin")).unwrap();
        assert_eq!(p.key, "x.bin");
    }
}
