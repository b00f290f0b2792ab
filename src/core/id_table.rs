//! A map from the library's ids to values, for ids handed out in sequence.
//!
//! The runtime numbers each kind of object (user agent, registerer, ...)
//! on its own: an id is its sequence number shifted left by [`KIND_BITS`],
//! with the kind in the low bits (see `runtime::next_id`). Ids of one kind
//! are therefore dense, and a table of them is kept in pages of [`PAGE`]
//! consecutive ids: while they stay dense a value costs its own size in
//! its page (8 bytes for a box or an `Arc`) where a hashed map costs 17
//! bytes a bucket at a load
//! between 44 % and 87 % (28 bytes a value at 10 000). Only the page
//! directory is hashed, one entry per [`PAGE`] ids. A page whose last value
//! goes is freed, so ids of objects long gone cost nothing. The price: a
//! page lives while any of its ids does, so an application that keeps one
//! object in 32 of those it makes, for good, pays a page for each (a few
//! hundred bytes to a few KiB, by the value's size: the endpoint's tables
//! hold boxes for that reason); objects made together and dropped
//! together fill and free whole pages.
//!
//! Any `u64` is a valid key (tests number their objects 1, 2, 3); keys that
//! differ in their kind bits never share a page.

use super::idhash::IdMap;

/// The low bits of an id that name its kind.
pub const KIND_BITS: u32 = 3;

/// Those bits as a mask.
pub const KIND_MASK: u64 = (1 << KIND_BITS) - 1;

/// Consecutive ids of one kind per page.
pub const PAGE: usize = 32;

/// Values by id, in pages of consecutive ids.
pub struct IdTable<V> {
    pages: IdMap<u64, Box<Page<V>>>,
    len: usize,
}

struct Page<V> {
    used: u32,
    slots: [Option<V>; PAGE],
}

/// The page an id is on and its place there.
fn split(id: u64) -> (u64, usize) {
    let seq = id >> KIND_BITS;
    let kind = id & KIND_MASK;
    (
        ((seq / PAGE as u64) << KIND_BITS) | kind,
        (seq % PAGE as u64) as usize,
    )
}

/// The id at place `slot` of page `page` (the inverse of [`split`]).
fn join(page: u64, slot: usize) -> u64 {
    let kind = page & KIND_MASK;
    let seq = (page >> KIND_BITS) * PAGE as u64 + slot as u64;
    (seq << KIND_BITS) | kind
}

impl<V> Default for IdTable<V> {
    fn default() -> Self {
        IdTable {
            pages: IdMap::default(),
            len: 0,
        }
    }
}

impl<V> IdTable<V> {
    /// The value of `id`.
    pub fn get(&self, id: &u64) -> Option<&V> {
        let (page, slot) = split(*id);
        self.pages.get(&page)?.slots[slot].as_ref()
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        let (page, slot) = split(*id);
        self.pages.get_mut(&page)?.slots[slot].as_mut()
    }

    /// Whether `id` has a value.
    pub fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    /// Sets the value of `id`, returning the one it replaces.
    pub fn insert(&mut self, id: u64, value: V) -> Option<V> {
        let (page, slot) = split(id);
        let p = self.pages.entry(page).or_insert_with(|| {
            Box::new(Page {
                used: 0,
                slots: std::array::from_fn(|_| None),
            })
        });
        let old = p.slots[slot].replace(value);
        if old.is_none() {
            p.used += 1;
            self.len += 1;
        }
        old
    }

    /// Takes the value of `id` out (freeing its page when it was the last).
    pub fn remove(&mut self, id: &u64) -> Option<V> {
        let (page, slot) = split(*id);
        let p = self.pages.get_mut(&page)?;
        let old = p.slots[slot].take()?;
        p.used -= 1;
        self.len -= 1;
        if p.used == 0 {
            self.pages.remove(&page);
        }
        Some(old)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every id with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.pages.iter().flat_map(|(page, p)| {
            p.slots
                .iter()
                .enumerate()
                .filter_map(move |(slot, v)| v.as_ref().map(|v| (join(*page, slot), v)))
        })
    }

    /// Every id, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// Takes every value out.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, V)> {
        self.len = 0;
        std::mem::take(&mut self.pages)
            .into_iter()
            .flat_map(|(page, p)| {
                p.slots
                    .into_iter()
                    .enumerate()
                    .filter_map(move |(slot, v)| v.map(|v| (join(page, slot), v)))
            })
    }
}

/// A set of ids, kept as an [`IdTable`] of nothing: two or three bytes an
/// id when they are dense (a byte a slot, the page's count, the directory).
#[derive(Default, Debug)]
pub struct IdTableSet(IdTable<()>);

impl IdTableSet {
    /// Adds `id`; false when it was there.
    pub fn insert(&mut self, id: u64) -> bool {
        self.0.insert(id, ()).is_none()
    }

    /// Removes `id`; false when it was not there.
    pub fn remove(&mut self, id: &u64) -> bool {
        self.0.remove(id).is_some()
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &u64) -> bool {
        self.0.contains_key(id)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every id, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.keys()
    }
}

impl IntoIterator for IdTableSet {
    type Item = u64;
    type IntoIter = std::vec::IntoIter<u64>;

    fn into_iter(mut self) -> Self::IntoIter {
        let ids: Vec<u64> = self.0.drain().map(|(id, ())| id).collect();
        ids.into_iter()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for IdTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn split_and_join_are_inverse_for_any_id() {
        for id in [
            0,
            1,
            7,
            8,
            9,
            255,
            256,
            257,
            u64::MAX,
            u64::MAX - 7,
            1 << 63,
        ] {
            let (page, slot) = split(id);
            assert_eq!(join(page, slot), id, "{id}");
        }
        for id in 0..10_000u64 {
            let (page, slot) = split(id);
            assert_eq!(join(page, slot), id);
        }
    }

    #[test]
    fn ids_of_one_kind_fill_pages_and_kinds_never_share_one() {
        let mut t = IdTable::default();
        // Registerer-like ids (kind 2) and user-agent-like ids (kind 1).
        for seq in 1..=100u64 {
            t.insert((seq << KIND_BITS) | 2, seq);
            t.insert((seq << KIND_BITS) | 1, seq + 1000);
        }
        assert_eq!(t.len(), 200);
        // 100 sequence numbers from 1 span pages 0..=3, once per kind.
        assert_eq!(t.pages.len(), 8);
        assert_eq!(t.get(&((7 << KIND_BITS) | 2)), Some(&7));
        assert_eq!(t.get(&((7 << KIND_BITS) | 1)), Some(&1007));
        assert_eq!(t.get(&((7 << KIND_BITS) | 3)), None);
    }

    #[test]
    fn behaves_like_a_map_and_frees_empty_pages() {
        let mut t: IdTable<String> = IdTable::default();
        let mut m: HashMap<u64, String> = HashMap::new();
        // A deterministic mix of inserts, replacements and removals over
        // sparse and dense keys.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = if step % 3 == 0 { x } else { x % 700 };
            if x % 5 < 3 {
                assert_eq!(
                    t.insert(id, format!("{step}")),
                    m.insert(id, format!("{step}"))
                );
            } else {
                assert_eq!(t.remove(&id), m.remove(&id));
            }
            assert_eq!(t.len(), m.len());
        }
        for (id, v) in &m {
            assert_eq!(t.get(id), Some(v));
            assert!(t.contains_key(id));
        }
        let mut seen: Vec<(u64, String)> = t.iter().map(|(k, v)| (k, v.clone())).collect();
        let mut want: Vec<(u64, String)> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
        let ids: Vec<u64> = t.keys().collect();
        for id in &ids {
            t.get_mut(id).unwrap().push('!');
        }
        assert!(t.iter().all(|(_, v)| v.ends_with('!')));
        for id in ids {
            t.remove(&id);
        }
        assert!(t.is_empty());
        assert_eq!(t.pages.len(), 0, "every page freed with its last value");
    }

    #[test]
    fn a_set_of_ids_adds_and_removes_once() {
        let mut s = IdTableSet::default();
        assert!(s.insert(10) && !s.insert(10) && s.insert(18));
        assert!(s.contains(&10) && !s.contains(&2));
        assert_eq!(s.len(), 2);
        assert!(s.remove(&10) && !s.remove(&10));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![18]);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec![18]);
    }

    #[test]
    fn drain_takes_everything() {
        let mut t = IdTable::default();
        for id in 0..100u64 {
            t.insert(id * 8 + 2, id);
        }
        let mut got: Vec<u64> = t.drain().map(|(_, v)| v).collect();
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(t.is_empty() && t.get(&2).is_none());
    }

    #[test]
    fn a_dense_value_costs_about_its_own_size() {
        // 10 000 boxes of one kind: pages of 32 eight-byte slots plus a small
        // directory, against 28 bytes a value in a hashed map at that size.
        assert_eq!(std::mem::size_of::<Page<Box<u8>>>(), 8 + PAGE * 8);
        let mut t = IdTable::default();
        for seq in 1..=10_000u64 {
            t.insert((seq << KIND_BITS) | 2, Box::new(0u8));
        }
        assert_eq!(t.pages.len(), 10_000 / PAGE + 1);
    }
}
