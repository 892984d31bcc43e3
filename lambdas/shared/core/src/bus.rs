//! Bus entries and how they are packed into PutEvents calls.

use std::borrow::{Borrow, Cow};
use std::ops::Range;

/// PutEvents takes at most this many entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents takes at most this many bytes per call (sum of entry sizes).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// One event ready for EventBridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry<'a> {
    /// The client's event id: how outcomes are reported back; not sent to EventBridge.
    pub id: String,
    /// Bus, source and detail type are the same for many entries: borrowed from the
    /// publisher's configuration, with neither a copy nor a reference count per event (atomic
    /// counts of `Arc`s showed up in the forward hot path's profile).
    pub event_bus_name: Cow<'a, str>,
    pub source: Cow<'a, str>,
    pub detail_type: Cow<'a, str>,
    /// Epoch milliseconds; EventBridge uses the time of the call when absent.
    pub time_millis: Option<i64>,
    /// JSON text.
    pub detail: String,
}

impl BusEntry<'_> {
    /// The entry with its names copied, for keeping it past its publisher.
    pub fn into_owned(self) -> BusEntry<'static> {
        BusEntry {
            id: self.id,
            event_bus_name: Cow::Owned(self.event_bus_name.into_owned()),
            source: Cow::Owned(self.source.into_owned()),
            detail_type: Cow::Owned(self.detail_type.into_owned()),
            time_millis: self.time_millis,
            detail: self.detail,
        }
    }

    /// The entry size as EventBridge counts it towards the 256 KB limit: 14 bytes for a time,
    /// plus the UTF-8 bytes of source, detail type and detail.
    pub fn size(&self) -> usize {
        let time = if self.time_millis.is_some() { 14 } else { 0 };
        time + self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// Splits entries, in order, into contiguous ranges that each fit one PutEvents call.
/// An entry too large for any call gets a range of its own, for the caller to reject.
pub fn batches<'a, E: Borrow<BusEntry<'a>>>(entries: &[E]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        let size = entry.borrow().size();
        let full = i - start == MAX_ENTRIES_PER_CALL || bytes + size > MAX_REQUEST_BYTES;
        if i > start && full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_len: usize) -> BusEntry<'static> {
        BusEntry {
            id: "e".into(),
            event_bus_name: "bus".into(),
            source: "src".into(),
            detail_type: "a.b".into(),
            time_millis: Some(0),
            detail: "x".repeat(detail_len),
        }
    }

    #[test]
    fn size_follows_the_eventbridge_formula() {
        let mut e = entry(100);
        assert_eq!(e.size(), 14 + 3 + 3 + 100);
        e.time_millis = None;
        assert_eq!(e.size(), 106);
    }

    #[test]
    fn at_most_ten_entries_per_call() {
        let entries: Vec<_> = (0..23).map(|_| entry(10)).collect();
        assert_eq!(batches(&entries), vec![0..10, 10..20, 20..23]);
        assert_eq!(
            batches::<BusEntry<'static>>(&[]),
            Vec::<Range<usize>>::new()
        );
    }

    #[test]
    fn calls_stay_under_256_kb() {
        // Each entry is ~100 KB: two fit in a call, a third does not.
        let entries: Vec<_> = (0..5).map(|_| entry(100 * 1024)).collect();
        assert_eq!(batches(&entries), vec![0..2, 2..4, 4..5]);
        for range in batches(&entries) {
            let total: usize = entries[range].iter().map(BusEntry::size).sum();
            assert!(total <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn an_oversized_entry_stands_alone() {
        let entries = vec![entry(10), entry(300 * 1024), entry(10)];
        assert_eq!(batches(&entries), vec![0..1, 1..2, 2..3]);
    }
}
