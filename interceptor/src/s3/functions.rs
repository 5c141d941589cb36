// SPDX-License-Identifier: Apache-2.0
//! GET and PUT through functions: `before-get` hooks, transformed GET bodies (`after-get` and
//! explicit invocation), transformed or validated PUT bodies, and the async-event intents
//! around writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use md5::{Digest, Md5};
use quarry_offload::{ChunkStream, Effects, Flow, ObjectFacts};
use s3s::dto::{GetObjectOutput, PutObjectOutput};
use s3s::{S3Error, S3ErrorCode, S3Response, S3Result};

use super::S3Frontend;
use super::conditions::{ConditionTarget, ReadConditions};
use super::convert::{etag, fill_output_attrs, streaming_blob, timestamp};
use super::error::{event_error, function_error, hook_error};
use crate::hooks::{Chain, Hooks, Origin};
use crate::store::{BodyStream, ByteRange, ObjectAttrs, PutOptions, StoreError};
use crate::triggers::{Event, RangePolicy};

/// Most bytes of transformed output a Range request may select (they are collected to give
/// an exact `Content-Range`).
const MAX_TRANSFORMED_RANGE: usize = 64 * 1024 * 1024;

/// What a `before-get` hook decided, when it did not end the request.
#[derive(Debug, Default)]
pub(super) struct BeforeGet {
    /// Read this key instead.
    pub(super) rewrite: Option<String>,
    /// Headers for the response.
    pub(super) headers: Vec<(String, String)>,
}

impl S3Frontend {
    /// Runs the `before-get` trigger of `bucket`/`key`, if any: it may deny (an error), redirect
    /// (a `307` error with `Location`), rewrite the key or add headers.
    pub(super) async fn before_get(
        &self,
        hooks: &Hooks,
        bucket: &str,
        key: &str,
    ) -> S3Result<BeforeGet> {
        let Some(chain) = hooks
            .sync_chain(bucket, key, Event::BeforeGet, &[], &BTreeMap::new())
            .map_err(|e| hook_error(&e))?
        else {
            return Ok(BeforeGet::default());
        };
        let facts = ObjectFacts {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            ..ObjectFacts::default()
        };
        let (running, effects) = hooks.start(
            &chain,
            Event::BeforeGet.as_str(),
            Flow::BeforeRead,
            facts,
            Box::pin(futures::stream::empty()),
        );
        let mut output = running.output;
        while output.next().await.is_some() {}
        running.done.await.map_err(|e| function_error(&e))?;
        let effects = effects.snapshot();
        if let Some(url) = effects.redirect {
            let mut err = S3Error::with_message(
                S3ErrorCode::TemporaryRedirect,
                format!("function {} redirects this request to {url}", chain.label()),
            );
            err.set_status_code(StatusCode::TEMPORARY_REDIRECT);
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&url) {
                headers.insert(http::header::LOCATION, value);
            }
            err.set_headers(headers);
            return Err(err);
        }
        Ok(BeforeGet {
            rewrite: effects.rewrite_key,
            headers: effects.headers,
        })
    }

    /// A GET whose body goes through `chain`. Headers are sent with the first output byte (or
    /// at the end for an empty output), so a function that fails before writing anything gives
    /// the client a proper error.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one GetObject request"
    )]
    pub(super) async fn transformed_get(
        &self,
        hooks: &Hooks,
        chain: Chain,
        bucket: &str,
        key: &str,
        conditions: ReadConditions,
        range: Option<ByteRange>,
        mut headers: Vec<(String, String)>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if range.is_some() && chain.range == RangePolicy::Refuse {
            let trigger = match chain.origin {
                Origin::Trigger(id) => id,
                Origin::Explicit => 0,
            };
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Range requests are not served on objects transformed by trigger {trigger} (function {}); it was added with range = refuse",
                    chain.label()
                ),
            ));
        }
        let reader = self
            .store
            .get_object(bucket, key, None)
            .await
            .map_err(|e| self.store_err(e))?;
        conditions.check(&reader.meta, ConditionTarget::Read)?;
        let meta = reader.meta;
        let facts = facts_of(
            bucket,
            key,
            Some(meta.size),
            &meta.attrs,
            Some(meta.etag.clone()),
        );
        let event = match chain.origin {
            Origin::Trigger(_) => Event::AfterGet.as_str(),
            Origin::Explicit => "invoke",
        };
        let (running, effects) = hooks.start(&chain, event, Flow::Read, facts, reader.body);
        let mut output = running.output;
        let done = running.done;

        let (body, content_range): (BodyStream, Option<String>) = match range {
            Some(range) => {
                let collected = collect_range(&mut output, range).await;
                let result = done.await;
                let selected = match (collected, result) {
                    (_, Err(e)) => return Err(function_error(&e)),
                    (Err(e), Ok(_)) => return Err(e),
                    (Ok(selected), Ok(_)) => selected,
                };
                let body: BodyStream =
                    Box::pin(futures::stream::once(async move { Ok(selected.bytes) }));
                (body, Some(selected.content_range))
            }
            None => match output.next().await {
                Some(Ok(first)) => {
                    // The chain finishes while the body streams; its outcome still reaches the
                    // metrics and the log.
                    tokio::spawn(async move {
                        let _ = done.await;
                    });
                    let rest = output;
                    let body: BodyStream =
                        Box::pin(futures::stream::once(async move { Ok(first) }).chain(rest));
                    (body, None)
                }
                Some(Err(_)) | None => {
                    done.await.map_err(|e| function_error(&e))?;
                    (Box::pin(futures::stream::empty()), None)
                }
            },
        };

        headers.extend(effects.snapshot().headers);
        let mut out = GetObjectOutput {
            last_modified: Some(timestamp(meta.last_modified)),
            body: Some(streaming_blob(body)),
            content_range: content_range.clone(),
            ..Default::default()
        };
        fill_output_attrs!(out, meta.attrs);
        let mut resp_headers = HeaderMap::new();
        apply_function_headers(&mut out, &mut resp_headers, &headers);
        if content_range.is_some() {
            out.content_length = None;
        }
        insert_header(&mut resp_headers, "x-quarry-function", &chain.label());
        let backend = effects
            .backend()
            .unwrap_or_else(|| hooks.backend().id().clone());
        insert_header(&mut resp_headers, "x-quarry-backend", backend.0.as_str());
        insert_device_time(&mut resp_headers, &effects);
        let mut resp = S3Response::new(out);
        resp.headers = resp_headers;
        if content_range.is_some() {
            resp.status = Some(StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    /// A PUT whose body goes through `chain` before it is stored. The client's declared length
    /// and Content-MD5 are checked on the bytes the client sent; the stored ETag is that of the
    /// stored (transformed) bytes. A rejection or failure stores nothing.
    pub(super) async fn transformed_put(
        &self,
        hooks: &Hooks,
        chain: Chain,
        bucket: &str,
        key: &str,
        body: BodyStream,
        mut options: PutOptions,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let body = client_checked(
            body,
            options.expected_len.take(),
            options.content_md5.take(),
        );
        // The first error of the client's body (a bad signature, digest or length) is kept:
        // it is the cause when the chain then fails, and the client gets its S3 error.
        let input_error = Arc::new(std::sync::Mutex::new(None::<std::io::Error>));
        let body = keep_first_error(body, Arc::clone(&input_error));
        let facts = facts_of(bucket, key, None, &options.attrs, None);
        let event = match chain.origin {
            Origin::Trigger(_) => Event::Put.as_str(),
            Origin::Explicit => "invoke",
        };
        let (running, effects) = hooks.start(&chain, event, Flow::Write, facts, body);
        options.late_metadata = Some(Arc::clone(&effects));
        let stored = self
            .store
            .put_object(bucket, key, running.output, options)
            .await;
        let finished = running.done.await;
        let client_error = input_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Err(_), Some(source)) = (&stored, client_error) {
            return Err(self.store_err(StoreError::Body { source }));
        }
        let meta = match (stored, finished) {
            (Ok(meta), _) => meta,
            (Err(StoreError::Body { .. }), Err(e)) => return Err(function_error(&e)),
            (Err(e), _) => return Err(self.store_err(e)),
        };
        self.metrics.bytes_in.inc_by(meta.size);
        let mut resp = S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&meta.etag)),
            size: i64::try_from(meta.size).ok(),
            ..Default::default()
        });
        insert_header(&mut resp.headers, "x-quarry-function", &chain.label());
        if let Some(backend) = effects.backend() {
            insert_header(&mut resp.headers, "x-quarry-backend", backend.0.as_str());
        }
        insert_device_time(&mut resp.headers, &effects);
        Ok(resp)
    }

    /// Writes that would store bytes without passing through a `put` trigger's functions are
    /// refused on the keys it covers (a validation trigger cannot be bypassed).
    pub(super) fn refuse_bypassing_put_trigger(
        &self,
        bucket: &str,
        key: &str,
        what: &str,
    ) -> S3Result<()> {
        let Some(hooks) = &self.hooks else {
            return Ok(());
        };
        if let Some(trigger) = hooks.triggers.matching(bucket, Event::Put, key).first() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "{what} are not accepted for keys covered by put trigger {} (function {}); upload with a single PUT",
                    trigger.id,
                    trigger.functions.join(",")
                ),
            ));
        }
        Ok(())
    }

    /// A copy reads its source without running the source's read triggers, so a source whose
    /// reads are intercepted (`before-get` may deny, `after-get` transforms) is refused: its
    /// stored bytes are served only through those functions.
    pub(super) fn refuse_intercepted_copy_source(&self, bucket: &str, key: &str) -> S3Result<()> {
        let Some(hooks) = &self.hooks else {
            return Ok(());
        };
        for event in [Event::BeforeGet, Event::AfterGet] {
            if let Some(trigger) = hooks.triggers.matching(bucket, event, key).first() {
                return Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    format!(
                        "the copy source is read through {event} trigger {} (function {}); its stored bytes cannot be copied",
                        trigger.id,
                        trigger.functions.join(",")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records intents for the async triggers of an operation about to run.
    pub(super) fn event_intents(
        &self,
        bucket: &str,
        key: &str,
        event: Event,
    ) -> S3Result<Vec<u64>> {
        let Some(hooks) = &self.hooks else {
            return Ok(Vec::new());
        };
        let triggers = hooks.async_triggers(bucket, key, event);
        hooks
            .events
            .record_intents(&triggers, bucket, key)
            .map_err(|e| event_error(&e))
    }

    /// Settles intents after the operation: ready when it committed, dropped when it failed.
    /// A failure here is logged; recovery at the next start settles them from the store.
    pub(super) fn settle_events(&self, ids: &[u64], committed: bool) {
        let Some(hooks) = &self.hooks else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        let result = if committed {
            hooks.events.commit(ids)
        } else {
            hooks.events.abandon(ids)
        };
        if let Err(e) = result {
            tracing::error!(events = ?ids, "cannot settle trigger events (recovery will): {e}");
        }
    }
}

/// The facts a function sees about an object.
fn facts_of(
    bucket: &str,
    key: &str,
    size: Option<u64>,
    attrs: &ObjectAttrs,
    etag: Option<String>,
) -> ObjectFacts {
    ObjectFacts {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        content_type: attrs.content_type.clone(),
        etag,
        metadata: attrs.user_metadata.clone(),
    }
}

/// Applies headers a function set: standard ones into the output's fields (so they replace the
/// stored object's), the rest as extra response headers. The stored object's length does not
/// describe the transformed body; only a `content-length` the function set is sent.
pub(super) fn apply_function_headers(
    out: &mut GetObjectOutput,
    extra: &mut HeaderMap,
    headers: &[(String, String)],
) {
    for (name, value) in headers {
        match name.as_str() {
            "content-type" => out.content_type = Some(value.clone()),
            "content-encoding" => out.content_encoding = Some(value.clone()),
            "content-disposition" => out.content_disposition = Some(value.clone()),
            "content-language" => out.content_language = Some(value.clone()),
            "cache-control" => out.cache_control = Some(value.clone()),
            "content-length" => out.content_length = value.parse().ok(),
            "expires" => {
                out.expires = None;
                insert_header(extra, name, value);
            }
            other => {
                if let Some(meta) = other.strip_prefix("x-amz-meta-") {
                    out.metadata
                        .get_or_insert_with(Default::default)
                        .insert(meta.to_owned(), value.clone());
                } else {
                    insert_header(extra, other, value);
                }
            }
        }
    }
}

/// `x-quarry-device-time`: the simulated device time of the chain's jobs on modelled devices,
/// in whole microseconds; absent when none ran on one.
fn insert_device_time(map: &mut HeaderMap, effects: &Effects) {
    if let Some(time) = effects.device_time() {
        insert_header(map, "x-quarry-device-time", &time.as_micros().to_string());
    }
}

fn insert_header(map: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        map.insert(name, value);
    }
}

/// The bytes a Range selects from a transformed body, with their `Content-Range`.
struct Selected {
    bytes: Bytes,
    content_range: String,
}

/// Collects the range of `output` (bounded by [`MAX_TRANSFORMED_RANGE`]), reading it to the end
/// when the range is open-ended or a suffix.
async fn collect_range(output: &mut ChunkStream, range: ByteRange) -> S3Result<Selected> {
    let too_large = || {
        S3Error::with_message(
            S3ErrorCode::InvalidRange,
            format!(
                "a Range over transformed bytes may select at most {MAX_TRANSFORMED_RANGE} bytes"
            ),
        )
    };
    let mut total: u64 = 0;
    let mut kept: Vec<u8> = Vec::new();
    let (first, last, suffix) = match range {
        ByteRange::FromTo { first, last } => (first, last, None),
        ByteRange::Suffix { length } => (0, None, Some(length)),
    };
    if let Some(last) = last
        && last.saturating_sub(first) >= MAX_TRANSFORMED_RANGE as u64
    {
        return Err(too_large());
    }
    while let Some(item) = output.next().await {
        let Ok(chunk) = item else {
            break;
        };
        let start = total;
        total += chunk.len() as u64;
        match suffix {
            Some(length) => {
                kept.extend_from_slice(&chunk);
                let keep = usize::try_from(length)
                    .unwrap_or(usize::MAX)
                    .min(MAX_TRANSFORMED_RANGE);
                if kept.len() > keep {
                    kept.drain(..kept.len() - keep);
                }
            }
            None => {
                let end = last.map_or(u64::MAX, |l| l.saturating_add(1));
                let from = first.max(start);
                let to = end.min(total);
                if from < to {
                    let a = usize::try_from(from - start).unwrap_or(0);
                    let b = usize::try_from(to - start).unwrap_or(0);
                    kept.extend_from_slice(&chunk[a..b]);
                    if kept.len() > MAX_TRANSFORMED_RANGE {
                        return Err(too_large());
                    }
                }
                if total >= end {
                    // Drain the rest so the function ends normally.
                    while output.next().await.is_some() {}
                    break;
                }
            }
        }
    }
    let unsatisfiable = || {
        S3Error::with_message(
            S3ErrorCode::InvalidRange,
            "the range is past the end of the transformed bytes",
        )
    };
    if kept.is_empty() {
        return Err(unsatisfiable());
    }
    let len = kept.len() as u64;
    let start = match suffix {
        Some(_) => total - len,
        None => first,
    };
    let complete = if suffix.is_some() || last.is_none_or(|l| l + 1 > total) {
        total.to_string()
    } else {
        "*".to_owned()
    };
    Ok(Selected {
        content_range: format!("bytes {}-{}/{}", start, start + len - 1, complete),
        bytes: Bytes::from(kept),
    })
}

/// Passes `body` on, keeping its first error in `slot` and handing the chain a copy of its
/// message instead.
fn keep_first_error(
    body: ChunkStream,
    slot: Arc<std::sync::Mutex<Option<std::io::Error>>>,
) -> ChunkStream {
    Box::pin(body.map(move |item| {
        item.map_err(|e| {
            let copy = std::io::Error::new(e.kind(), e.to_string());
            let mut slot = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(e);
            }
            copy
        })
    }))
}

/// Checks the client's declared length and Content-MD5 on the bytes it sent, before a function
/// transforms them; a mismatch ends the stream with an error (nothing is stored).
fn client_checked(
    body: BodyStream,
    expected_len: Option<u64>,
    md5: Option<[u8; 16]>,
) -> ChunkStream {
    if expected_len.is_none() && md5.is_none() {
        return body;
    }
    let state = Arc::new(std::sync::Mutex::new((0u64, Md5::new())));
    let tail_state = Arc::clone(&state);
    let counted = body.map(move |item| {
        if let Ok(chunk) = &item {
            let mut s = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.0 += chunk.len() as u64;
            s.1.update(chunk);
        }
        item
    });
    let check = futures::stream::once(async move {
        let s = tail_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(expected) = expected_len
            && s.0 != expected
        {
            return Some(Err(std::io::Error::other(S3Error::with_message(
                S3ErrorCode::IncompleteBody,
                format!("the body has {} bytes; Content-Length said {expected}", s.0),
            ))));
        }
        if let Some(md5) = md5
            && s.1.clone().finalize().as_slice() != md5
        {
            return Some(Err(std::io::Error::other(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "the Content-MD5 you specified did not match what was received",
            ))));
        }
        None
    })
    .filter_map(|x| async move { x });
    Box::pin(counted.chain(check))
}
