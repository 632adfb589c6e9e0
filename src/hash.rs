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

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
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
}
