//! A fast hasher for maps whose keys the network cannot insert: the
//! library's own ids, mio tokens, registerer keys (random tokens we
//! generated), and the AORs, contact users, addresses and flow keys of our own
//! registrations. SipHash, the standard map's default, guards against keys
//! chosen to collide; a lookup with a key taken from the network (a
//! response's branch, a request's user) never inserts, so a multiply-rotate
//! hash (FxHash's scheme) is enough and several times cheaper.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hasher for small keys we made ourselves.
#[derive(Clone, Copy, Default, Debug)]
pub struct IdHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A `HashSet` with [`IdHasher`].
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sequential_ids_spread_over_the_high_bits() {
        // hashbrown takes its control byte from the top 7 bits.
        let mut seen = HashSet::new();
        for id in 0u64..4096 {
            let mut h = IdHasher::default();
            h.write_u64(id);
            seen.insert(h.finish() >> 57);
        }
        assert_eq!(seen.len(), 128, "all 128 control values used");
    }

    #[test]
    fn maps_work_with_strings_and_ids() {
        let mut m: IdMap<String, u64> = IdMap::default();
        for i in 0..10_000u64 {
            m.insert(format!("k{i:09}"), i);
        }
        assert_eq!(m.get("k000004242"), Some(&4242));
        assert_eq!(m.get("nope"), None);
        let s: HashSet<u64, BuildHasherDefault<IdHasher>> = (0..100).collect();
        assert!(s.contains(&99) && !s.contains(&100));
    }
}
