// SPDX-License-Identifier: Apache-2.0
//! The trigger index: which triggers match a (bucket, event, key), at a cost that does not grow
//! with the number of triggers.
//!
//! Triggers of one bucket and event are grouped by key prefix in a hash map, and the index
//! remembers which prefix lengths occur. A lookup hashes the key's prefixes of those lengths
//! only (at most one per distinct length, bounded by the key's length), then checks the suffix
//! of the few triggers found.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Event, TriggerRecord};

/// Triggers of one bucket and event.
#[derive(Debug, Default)]
struct EventTriggers {
    by_prefix: HashMap<String, Vec<Arc<TriggerRecord>>>,
    /// Distinct prefix lengths, ascending.
    prefix_lens: Vec<usize>,
}

/// An immutable snapshot of every trigger, rebuilt on change.
#[derive(Debug, Default)]
pub struct TriggerIndex {
    buckets: HashMap<String, [EventTriggers; Event::COUNT]>,
    len: usize,
}

impl TriggerIndex {
    /// An index of `triggers`.
    pub fn build(triggers: impl IntoIterator<Item = Arc<TriggerRecord>>) -> Self {
        let mut index = Self::default();
        for trigger in triggers {
            let events = index.buckets.entry(trigger.bucket.clone()).or_default();
            let slot = &mut events[trigger.event.slot()];
            if !slot.prefix_lens.contains(&trigger.prefix.len()) {
                slot.prefix_lens.push(trigger.prefix.len());
                slot.prefix_lens.sort_unstable();
            }
            slot.by_prefix
                .entry(trigger.prefix.clone())
                .or_default()
                .push(trigger);
            index.len += 1;
        }
        index
    }

    /// Number of triggers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any trigger exists on `bucket` (a fast path for requests on other buckets).
    pub fn has_bucket(&self, bucket: &str) -> bool {
        self.buckets.contains_key(bucket)
    }

    /// Triggers on `bucket` for `event` whose prefix and suffix match `key`, in id order.
    pub fn matching(&self, bucket: &str, event: Event, key: &str) -> Vec<Arc<TriggerRecord>> {
        let mut out = Vec::new();
        let Some(events) = self.buckets.get(bucket) else {
            return out;
        };
        let slot = &events[event.slot()];
        for &len in &slot.prefix_lens {
            if len > key.len() {
                break;
            }
            let Some(prefix) = key.get(..len) else {
                continue;
            };
            if let Some(found) = slot.by_prefix.get(prefix) {
                out.extend(found.iter().filter(|t| key.ends_with(&t.suffix)).cloned());
            }
        }
        if out.len() > 1 {
            out.sort_by_key(|t| t.id);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::RangePolicy;

    fn trigger(
        id: u64,
        bucket: &str,
        event: Event,
        prefix: &str,
        suffix: &str,
    ) -> Arc<TriggerRecord> {
        Arc::new(TriggerRecord {
            backend_class: None,
            id,
            bucket: bucket.to_owned(),
            event,
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            functions: vec!["f".to_owned()],
            params: Default::default(),
            range: RangePolicy::Refuse,
            created: std::time::SystemTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn matches_bucket_event_prefix_and_suffix() {
        let index = TriggerIndex::build([
            trigger(1, "b", Event::AfterGet, "logs/", ".txt"),
            trigger(2, "b", Event::AfterGet, "", ".csv"),
            trigger(3, "b", Event::PutDone, "", ""),
            trigger(4, "c", Event::AfterGet, "", ""),
        ]);
        let ids = |bucket, event, key| -> Vec<u64> {
            index
                .matching(bucket, event, key)
                .iter()
                .map(|t| t.id)
                .collect()
        };
        assert_eq!(ids("b", Event::AfterGet, "logs/a.txt"), vec![1]);
        assert_eq!(ids("b", Event::AfterGet, "logs/a.csv"), vec![2]);
        assert_eq!(ids("b", Event::AfterGet, "other/a.txt"), Vec::<u64>::new());
        assert_eq!(ids("b", Event::PutDone, "x"), vec![3]);
        assert_eq!(ids("c", Event::AfterGet, "anything"), vec![4]);
        assert_eq!(ids("d", Event::AfterGet, "anything"), Vec::<u64>::new());
        assert_eq!(ids("b", Event::AfterGet, "l"), Vec::<u64>::new());
    }

    #[test]
    fn multibyte_keys_do_not_split_characters() {
        let index = TriggerIndex::build([trigger(1, "b", Event::AfterGet, "é", "")]);
        assert_eq!(index.matching("b", Event::AfterGet, "éa").len(), 1);
        assert!(index.matching("b", Event::AfterGet, "ea").is_empty());
        // A one-byte prefix length falls inside 'é' and must not panic.
        let index = TriggerIndex::build([trigger(1, "b", Event::AfterGet, "x", "")]);
        assert!(index.matching("b", Event::AfterGet, "é").is_empty());
    }

    #[test]
    fn matches_among_many_triggers_like_a_linear_scan() {
        let triggers: Vec<_> = (0..2000u64)
            .map(|i| {
                let prefix = format!("p{}/", i % 97);
                let suffix = if i % 3 == 0 {
                    ".txt".to_owned()
                } else {
                    String::new()
                };
                trigger(i, "b", Event::PutDone, &prefix, &suffix)
            })
            .collect();
        let index = TriggerIndex::build(triggers.iter().cloned());
        for key in ["p5/a.txt", "p5/a.bin", "p96/x", "p100/x", "", "p1"] {
            let expected: Vec<u64> = triggers
                .iter()
                .filter(|t| key.starts_with(&t.prefix) && key.ends_with(&t.suffix))
                .map(|t| t.id)
                .collect();
            let got: Vec<u64> = index
                .matching("b", Event::PutDone, key)
                .iter()
                .map(|t| t.id)
                .collect();
            assert_eq!(got, expected, "{key}");
        }
    }
}
