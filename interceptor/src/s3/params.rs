// SPDX-License-Identifier: Apache-2.0
//! Explicit invocation, parsed once per request: `x-quarry-function: NAME[,NAME2...]`,
//! `x-quarry-param-NAME: VALUE` and `x-quarry-backend-class: POLICY`, as headers or as query
//! parameters of the same names (so a presigned URL or curl can carry them). A header wins over
//! a query parameter of the same name.

use std::collections::BTreeMap;

use http::{HeaderMap, Uri};
use s3s::{S3Error, S3ErrorCode};

/// Header and query name of the function to run.
pub const FUNCTION: &str = "x-quarry-function";
/// Header and query name of the placement policy (`auto`, `gpu`, `require:gpu`, `prefer:cpu`...).
pub const BACKEND_CLASS: &str = "x-quarry-backend-class";
/// Prefix of parameter headers and query names.
pub const PARAM_PREFIX: &str = "x-quarry-param-";
/// Most explicit params on one request.
const MAX_PARAMS: usize = 64;
/// Longest param value.
const MAX_VALUE: usize = 4096;

/// What the request asked for explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explicit {
    /// Functions to run, in order (empty: none).
    pub functions: Vec<String>,
    /// Params, names lowercased.
    pub params: BTreeMap<String, String>,
    /// Where the functions should run, as given.
    pub backend_class: Option<String>,
}

impl Explicit {
    /// Parses the request's headers and query string.
    pub fn parse(headers: &HeaderMap, uri: &Uri) -> Result<Self, S3Error> {
        let mut out = Self::default();
        let mut function = None;
        if let Some(query) = uri.query() {
            for (name, value) in url_pairs(query) {
                let name = name.to_ascii_lowercase();
                if name == FUNCTION {
                    function = Some(value);
                } else if name == BACKEND_CLASS {
                    out.backend_class = Some(value);
                } else if let Some(param) = name.strip_prefix(PARAM_PREFIX) {
                    out.params.insert(param.to_owned(), value);
                }
            }
        }
        for (name, value) in headers {
            let name = name.as_str();
            let value = value.to_str().map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("header {name} is not visible ASCII"),
                )
            });
            if name == FUNCTION {
                function = Some(value?.to_owned());
            } else if name == BACKEND_CLASS {
                out.backend_class = Some(value?.to_owned());
            } else if let Some(param) = name.strip_prefix(PARAM_PREFIX) {
                out.params.insert(param.to_owned(), value?.to_owned());
            }
        }
        if let Some(function) = function {
            out.functions = function
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect();
            if out.functions.is_empty() {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "x-quarry-function is empty; name a deployed function",
                ));
            }
        }
        if out.params.len() > MAX_PARAMS {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("at most {MAX_PARAMS} x-quarry-param-* values per request"),
            ));
        }
        if let Some((name, _)) = out
            .params
            .iter()
            .find(|(n, v)| n.is_empty() || v.len() > MAX_VALUE)
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("param {name:?} needs a name and a value of at most {MAX_VALUE} bytes"),
            ));
        }
        Ok(out)
    }
}

/// Decoded `name=value` pairs of a query string.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_query_both_work_and_headers_win() {
        let mut headers = HeaderMap::new();
        headers.insert("x-quarry-param-word", "kiwi".parse().unwrap());
        let uri: Uri = "/b/k?x-quarry-function=wc%2Chead&x-quarry-param-word=fig&x-quarry-param-n=3&X-Amz-Signature=abc"
            .parse()
            .unwrap();
        let e = Explicit::parse(&headers, &uri).unwrap();
        assert_eq!(e.functions, vec!["wc", "head"]);
        assert_eq!(e.params["word"], "kiwi");
        assert_eq!(e.params["n"], "3");
        assert_eq!(e.params.len(), 2);
    }

    #[test]
    fn nothing_asked_is_empty_and_an_empty_function_is_an_error() {
        let e = Explicit::parse(&HeaderMap::new(), &"/b/k".parse().unwrap()).unwrap();
        assert_eq!(e, Explicit::default());
        let mut headers = HeaderMap::new();
        headers.insert(FUNCTION, " , ".parse().unwrap());
        assert!(Explicit::parse(&headers, &"/b/k".parse().unwrap()).is_err());
    }
}
