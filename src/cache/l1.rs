//! The in-isolate L1 cache: a least-recently-used map bounded by bytes, whose entries expire
//! at a deadline (the entry's freshness, capped by the configured L1 TTL). Generic over the
//! value so the glue can hold platform-free bytes and headers; `now` comes in.

use std::collections::{BTreeMap, HashMap};

struct Slot<V> {
    value: V,
    bytes: usize,
    expires: u64,
    tick: u64,
}

/// A byte-bounded LRU with per-entry deadlines.
pub struct L1<V> {
    map: HashMap<String, Slot<V>>,
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    max_bytes: usize,
    max_entry_bytes: usize,
}

/// When an entry put in L1 at `now` leaves it: when its freshness ends, or after `max_ttl_ms`
/// (the bound on how long a purge cannot reach another isolate's L1), whichever is first.
pub fn entry_expiry(meta: &crate::cache::meta::CacheMeta, now: u64, max_ttl_ms: u64) -> u64 {
    now + meta.fresh.saturating_sub(meta.age_ms(now)).min(max_ttl_ms)
}

/// The bytes an entry is charged: its body and its header names and values.
pub fn entry_size(headers: &http::HeaderMap, body: &[u8]) -> usize {
    body.len() + headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum::<usize>()
}

impl<V: Clone> L1<V> {
    /// An empty cache holding at most `max_bytes`, entries of at most `max_entry_bytes`.
    pub fn new(max_bytes: usize, max_entry_bytes: usize) -> Self {
        Self { map: HashMap::new(), order: BTreeMap::new(), tick: 0, bytes: 0, max_bytes, max_entry_bytes }
    }

    /// The value under `key` if present and not expired at `now` (refreshes its recency).
    pub fn get(&mut self, key: &str, now: u64) -> Option<V> {
        let expired = self.map.get(key).is_some_and(|s| s.expires <= now);
        if expired {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let slot = self.map.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        self.order.insert(tick, key.to_owned());
        Some(slot.value.clone())
    }

    /// Inserts (replacing) an entry of `bytes` size that expires at `expires`. Entries larger than
    /// the entry limit, or already expired, are not kept. Evicts least recently used entries.
    pub fn insert(&mut self, key: String, value: V, bytes: usize, expires: u64, now: u64) -> bool {
        self.remove(&key);
        if bytes > self.max_entry_bytes || bytes > self.max_bytes || expires <= now {
            return false;
        }
        while self.bytes + bytes > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(s) = self.map.remove(&oldest) {
                self.bytes -= s.bytes;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.map.insert(key, Slot { value, bytes, expires, tick: self.tick });
        self.bytes += bytes;
        true
    }

    /// Removes an entry.
    pub fn remove(&mut self, key: &str) {
        if let Some(s) = self.map.remove(key) {
            self.order.remove(&s.tick);
            self.bytes -= s.bytes;
        }
    }

    /// Removes every entry for which `pred` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        let gone: Vec<String> = self.map.iter().filter(|(k, s)| !keep(k, &s.value)).map(|(k, _)| k.clone()).collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_lru_and_deadlines() {
        let mut l1 = L1::new(100, 60);
        assert!(l1.insert("a".into(), 1, 40, 1000, 0));
        assert!(l1.insert("b".into(), 2, 40, 1000, 0));
        assert_eq!(l1.get("a", 1), Some(1)); // a is now most recent
        assert!(l1.insert("c".into(), 3, 40, 1000, 0)); // evicts b
        assert_eq!(l1.get("b", 1), None);
        assert_eq!(l1.get("a", 1), Some(1));
        assert_eq!(l1.bytes(), 80);
        assert!(!l1.insert("big".into(), 4, 61, 1000, 0), "over the entry limit");
        assert!(!l1.insert("old".into(), 5, 1, 10, 10), "already expired");
        assert_eq!(l1.get("a", 1000), None, "expired at its deadline");
        assert_eq!(l1.len(), 1);
        l1.retain(|_, v| *v != 3);
        assert!(l1.is_empty() && l1.bytes() == 0);
    }

    #[test]
    fn replacing_keeps_accounting_right() {
        let mut l1 = L1::new(100, 100);
        l1.insert("a".into(), 1, 70, 10, 0);
        l1.insert("a".into(), 2, 50, 10, 0);
        assert_eq!(l1.bytes(), 50);
        assert_eq!(l1.get("a", 0), Some(2));
    }

    #[test]
    fn entries_leave_at_freshness_end_or_the_cap() {
        let meta = crate::cache::meta::CacheMeta { v: crate::cache::meta::META_VERSION, status: 200, stored_at: 0, initial_age: 0, fresh: 10_000, swr: 0, sie: 0, revalidate: false, must_revalidate: false, tags: vec![], vary: vec![], path: "/".into(), rule: "r".into(), index: false };
        assert_eq!(entry_expiry(&meta, 1_000, 5_000), 6_000, "capped");
        assert_eq!(entry_expiry(&meta, 8_000, 5_000), 10_000, "its freshness ends first");
        assert_eq!(entry_expiry(&meta, 20_000, 5_000), 20_000, "stale: gone at once");
        let h = crate::test_support::headers(&[("etag", "\"e\"")]);
        assert_eq!(entry_size(&h, b"abc"), 3 + 4 + 3);
    }
}
