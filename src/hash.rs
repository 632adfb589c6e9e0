//! A small, fast, deterministic hasher (FxHash's mixing) for the hot hash maps: group keys,
//! dictionary codes, record identities. Not DoS-resistant, which these in-process maps of the
//! caller's own data do not need; equality is always checked exactly.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Fx {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// The word of 8 bytes at `at` (little-endian).
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Fx {
    /// Long text (VMware's and consumption_log's tags, hashed for dedupe) in four independent
    /// lanes of 8 bytes each, folded into the state at the end: the multiplications of the lanes
    /// overlap instead of waiting on each other, about 3× fewer cycles per byte.
    #[inline]
    fn write_long(&mut self, bytes: &[u8]) -> usize {
        let blocks = bytes.len() / 32;
        let mut lanes = [Fx(1), Fx(2), Fx(3), Fx(4)];
        for b in 0..blocks {
            for (k, lane) in lanes.iter_mut().enumerate() {
                lane.mix(word(bytes, b * 32 + k * 8));
            }
        }
        for lane in lanes {
            self.mix(lane.0);
        }
        blocks * 32
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() >= 64 { &bytes[self.write_long(bytes)..] } else { bytes };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    /// Murmur3's fmix64: spreads every input bit over the low bits too. Without it, keys that
    /// differ only in their high bytes (zero-padded hex ids, read as little-endian words)
    /// collide in hashbrown's low-bit bucket index — a 30× slowdown seen on Exabits ids.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A `HashMap` with the Fx hasher.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn low_bits_spread_for_keys_differing_in_high_bytes() {
        let build = BuildHasherDefault::<Fx>::default();
        let buckets: std::collections::HashSet<u64> =
            (0..4096u32).map(|i| build.hash_one(("exabits", format!("{i:024x}").as_str())) & 4095).collect();
        // Close to uniform: a weak hash put these in a handful of buckets.
        assert!(buckets.len() > 2000, "{} buckets", buckets.len());
    }

    #[test]
    fn long_text_in_lanes_tells_every_byte_and_its_place() {
        let build = BuildHasherDefault::<Fx>::default();
        let base: Vec<u8> = (0..200u8).collect();
        let h = build.hash_one(&base);
        assert_eq!(h, build.hash_one(base.clone()));
        let mut seen = std::collections::HashSet::from([h]);
        for at in 0..base.len() {
            let mut changed = base.clone();
            changed[at] ^= 1;
            assert!(seen.insert(build.hash_one(&changed)), "byte {at}");
        }
        // The same words in another lane (moved by 8 bytes) hash differently.
        let mut moved = base.clone();
        moved.rotate_left(8);
        assert!(seen.insert(build.hash_one(&moved)));
        let buckets: std::collections::HashSet<u64> =
            (0..4096u32).map(|i| build.hash_one(format!("{:0>100}", i).as_str()) & 4095).collect();
        assert!(buckets.len() > 2000, "{} buckets", buckets.len());
    }
}
