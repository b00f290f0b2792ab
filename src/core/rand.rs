//! A small seeded pseudo-random generator for branches, tags, cnonces and jitter.
//!
//! The core takes its seed from the runtime (which reads the OS entropy pool), so
//! the core itself stays deterministic and testable.

/// xoshiro256** seeded through SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `id` as `N` characters of the token alphabet (5 bits each, lowest
/// first), if it fits in them.
pub fn id_token<const N: usize>(id: u64) -> Option<[u8; N]> {
    if N < 13 && id >> (5 * N) != 0 {
        return None;
    }
    let mut out = [0u8; N];
    let mut bits = id;
    for slot in &mut out {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    Some(out)
}

/// The id an [`id_token`] holds, if `token` is one's characters.
pub fn token_id(token: &[u8]) -> Option<u64> {
    if token.len() > 12 {
        return None;
    }
    let mut id = 0u64;
    for (i, b) in token.iter().enumerate() {
        let v = match b {
            b'a'..=b'z' => b - b'a',
            b'2'..=b'7' => b - b'2' + 26,
            _ => return None,
        };
        id |= u64::from(v) << (5 * i);
    }
    Some(id)
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` characters of lower-case base32: safe in tokens, tags and branches.
    pub fn token(&mut self, len: usize) -> String {
        let mut out = vec![0; len];
        self.fill_token(&mut out);
        // Base32 letters and digits are ASCII.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Fills `out` with what [`token`](Self::token) would give for its
    /// length (the same draws), for tokens kept in a fixed array or used
    /// once (branch tails, keys, cnonces): no string on the heap.
    pub fn fill_token(&mut self, out: &mut [u8]) {
        let mut bits = 0u64;
        let mut left = 0;
        for slot in out {
            if left == 0 {
                bits = self.next_u64();
                left = 12;
            }
            *slot = ALPHABET[(bits & 31) as usize];
            bits >>= 5;
            left -= 1;
        }
    }
}

/// Seeds drawn from the kernel by one `getrandom` call: creating 10 000
/// registerers in a loop costs 157 system calls instead of 10 000.
const SEEDS_PER_DRAW: usize = 64;

/// Bumped in a forked child, so that the child never hands out the seeds
/// its parent drew (two processes would then make the same Call-IDs).
static FORK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Seeds left in this thread's last draw, and the fork generation it was drawn in.
struct Drawn {
    seeds: [u64; SEEDS_PER_DRAW],
    left: usize,
    generation: u64,
}

thread_local! {
    static DRAWN: std::cell::RefCell<Drawn> = const {
        std::cell::RefCell::new(Drawn { seeds: [0; SEEDS_PER_DRAW], left: 0, generation: 0 })
    };
}

/// A seed from the operating system's entropy source, for production use:
/// each seed is handed out once, from a per-thread draw of
/// [`SEEDS_PER_DRAW`] (a forked child draws afresh).
pub fn os_seed() -> u64 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic; a failure
        // (ENOMEM) leaves forked children sharing undrawn seeds, no worse.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
    let generation = FORK_GENERATION.load(std::sync::atomic::Ordering::Relaxed);
    DRAWN
        .try_with(|d| {
            let d = &mut *d.borrow_mut();
            if d.left == 0 || d.generation != generation {
                d.left = if draw(&mut d.seeds) {
                    SEEDS_PER_DRAW
                } else {
                    0
                };
                d.generation = generation;
            }
            if d.left == 0 {
                return fallback_seed();
            }
            d.left -= 1;
            let seed = d.seeds[d.left];
            // Handed out once: not left behind in memory.
            d.seeds[d.left] = 0;
            seed
        })
        // A thread being torn down has no draw left.
        .unwrap_or_else(|_| single_seed())
}

/// Fills `seeds` from the kernel; false when it could not.
fn draw(seeds: &mut [u64]) -> bool {
    let len = std::mem::size_of_val(seeds);
    // SAFETY: getrandom writes at most `len` bytes into the slice.
    let n = unsafe { libc::getrandom(seeds.as_mut_ptr().cast(), len, 0) };
    n == len as isize
}

/// One seed straight from the kernel (no per-thread draw to take it from).
fn single_seed() -> u64 {
    let mut seed = [0u64; 1];
    if draw(&mut seed) {
        return seed[0];
    }
    fallback_seed()
}

/// Without the kernel's pool: std's per-process random hash keys and the time.
fn fallback_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn tokens_use_the_alphabet_and_length() {
        let mut r = Rng::new(1);
        let t = r.token(25);
        assert_eq!(t.len(), 25);
        assert!(t.bytes().all(|b| ALPHABET.contains(&b)));
        for id in [0u64, 1, 31, 32, 12_345_678, (1 << 50) - 1] {
            let t = id_token::<10>(id).unwrap();
            assert!(t.iter().all(|b| ALPHABET.contains(b)));
            assert_eq!(token_id(&t), Some(id));
        }
        assert_eq!(
            id_token::<10>(1 << 50),
            None,
            "does not fit in 10 characters"
        );
        assert_eq!(token_id(b"abc-"), None);
        assert_ne!(r.token(10), r.token(10));
    }

    /// A filled array is the token of its length, and the stream goes on
    /// the same after either.
    #[test]
    fn filled_tokens_are_the_tokens() {
        let (mut a, mut b) = (Rng::new(11), Rng::new(11));
        for len in 0..30 {
            let mut buf = vec![0u8; len];
            a.fill_token(&mut buf);
            assert_eq!(buf, b.token(len).into_bytes());
        }
        assert_eq!(a.next_u64(), b.next_u64());
    }

    /// Seeds from one draw and across draws are all different.
    #[test]
    fn os_seeds_are_not_repeated_within_or_across_draws() {
        let seeds: std::collections::HashSet<u64> =
            (0..SEEDS_PER_DRAW * 3 + 5).map(|_| os_seed()).collect();
        assert_eq!(seeds.len(), SEEDS_PER_DRAW * 3 + 5);
    }

    /// A forked child does not hand out what its parent drew.
    #[test]
    fn a_forked_child_draws_afresh() {
        let _ = os_seed();
        let mut fds = [0; 2];
        // SAFETY: plain pipe and fork; the child only computes a seed,
        // writes it and exits without unwinding.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let s = os_seed().to_ne_bytes();
                libc::write(fds[1], s.as_ptr().cast(), 8);
                libc::_exit(0);
            }
            let parent = os_seed();
            let mut buf = [0u8; 8];
            assert_eq!(libc::read(fds[0], buf.as_mut_ptr().cast(), 8), 8);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
            assert_ne!(
                u64::from_ne_bytes(buf),
                parent,
                "the child reused the parent's next seed"
            );
        }
    }

    #[test]
    fn unit_is_in_range() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
