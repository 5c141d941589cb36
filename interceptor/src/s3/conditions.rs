// SPDX-License-Identifier: Apache-2.0
//! Read preconditions: `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`
//! on GetObject and HeadObject, and their `x-amz-copy-source-if-*` twins on copies.
//!
//! Evaluation follows RFC 9110 section 13.2.2, which is also S3's documented behaviour: a
//! present `If-Match` makes `If-Unmodified-Since` irrelevant, a present `If-None-Match` makes
//! `If-Modified-Since` irrelevant. Dates compare at whole seconds, the precision of HTTP dates.

use std::time::{SystemTime, UNIX_EPOCH};

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, S3ErrorCode};

use crate::store::ObjectMeta;

/// The four conditional headers of one request.
#[derive(Debug, Default)]
pub(crate) struct ReadConditions {
    pub(crate) if_match: Option<ETagCondition>,
    pub(crate) if_none_match: Option<ETagCondition>,
    pub(crate) if_modified_since: Option<Timestamp>,
    pub(crate) if_unmodified_since: Option<Timestamp>,
}

/// What a failed condition answers: `412` for GET/HEAD and for copies, except that an
/// unchanged resource answers `304` on GET/HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConditionTarget {
    /// GetObject / HeadObject.
    Read,
    /// The source of CopyObject / UploadPartCopy: every failure is 412.
    CopySource,
}

impl ReadConditions {
    /// Checks the conditions against the current version.
    pub(crate) fn check(&self, meta: &ObjectMeta, target: ConditionTarget) -> Result<(), S3Error> {
        let modified = whole_seconds(meta.last_modified);
        match &self.if_match {
            Some(cond) if !etag_matches(cond, &meta.etag) => return Err(precondition_failed()),
            Some(_) => {}
            None => {
                if let Some(since) = &self.if_unmodified_since
                    && modified > timestamp_seconds(since)
                {
                    return Err(precondition_failed());
                }
            }
        }
        let not_modified = match &self.if_none_match {
            Some(cond) => etag_matches(cond, &meta.etag),
            None => self
                .if_modified_since
                .as_ref()
                .is_some_and(|since| modified <= timestamp_seconds(since)),
        };
        if not_modified {
            return Err(match target {
                ConditionTarget::Read => S3Error::new(S3ErrorCode::NotModified),
                ConditionTarget::CopySource => precondition_failed(),
            });
        }
        Ok(())
    }
}

fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "at least one of the preconditions you specified did not hold",
    )
}

fn etag_matches(cond: &ETagCondition, current: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == current,
    }
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn timestamp_seconds(t: &Timestamp) -> u64 {
    u64::try_from(time::OffsetDateTime::from(t.clone()).unix_timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use s3s::dto::ETag;

    use super::*;
    use crate::store::ObjectAttrs;

    fn meta(etag: &str, secs: u64) -> ObjectMeta {
        ObjectMeta {
            key: "k".into(),
            size: 1,
            etag: etag.into(),
            last_modified: UNIX_EPOCH + Duration::from_millis(secs * 1000 + 400),
            parts_count: None,
            attrs: ObjectAttrs::default(),
        }
    }

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn code(r: Result<(), S3Error>) -> Option<S3ErrorCode> {
        r.err().map(|e| e.code().clone())
    }

    #[test]
    fn if_match_mismatch_fails_even_when_unmodified_since_holds() {
        let c = ReadConditions {
            if_match: Some(ETagCondition::ETag(ETag::Strong("other".into()))),
            if_unmodified_since: Some(ts(2000)),
            ..Default::default()
        };
        assert_eq!(
            code(c.check(&meta("abc", 1000), ConditionTarget::Read)),
            Some(S3ErrorCode::PreconditionFailed)
        );
    }

    #[test]
    fn if_match_wins_over_failing_unmodified_since() {
        let c = ReadConditions {
            if_match: Some(ETagCondition::ETag(ETag::Strong("abc".into()))),
            if_unmodified_since: Some(ts(10)),
            ..Default::default()
        };
        assert!(c.check(&meta("abc", 1000), ConditionTarget::Read).is_ok());
    }

    #[test]
    fn unchanged_object_is_not_modified_on_read_and_precondition_failed_on_copy() {
        let c = ReadConditions {
            if_none_match: Some(ETagCondition::ETag(ETag::Strong("abc".into()))),
            ..Default::default()
        };
        let m = meta("abc", 1000);
        assert_eq!(
            code(c.check(&m, ConditionTarget::Read)),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(
            code(c.check(&m, ConditionTarget::CopySource)),
            Some(S3ErrorCode::PreconditionFailed)
        );
    }

    #[test]
    fn modified_since_compares_whole_seconds() {
        let m = meta("abc", 1000);
        let same = ReadConditions {
            if_modified_since: Some(ts(1000)),
            ..Default::default()
        };
        assert_eq!(
            code(same.check(&m, ConditionTarget::Read)),
            Some(S3ErrorCode::NotModified)
        );
        let earlier = ReadConditions {
            if_modified_since: Some(ts(999)),
            ..Default::default()
        };
        assert!(earlier.check(&m, ConditionTarget::Read).is_ok());
        let unmod = ReadConditions {
            if_unmodified_since: Some(ts(999)),
            ..Default::default()
        };
        assert_eq!(
            code(unmod.check(&m, ConditionTarget::Read)),
            Some(S3ErrorCode::PreconditionFailed)
        );
    }
}
