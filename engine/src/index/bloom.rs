//! A Bloom filter over blob ids. Ids are keyed hashes, uniformly distributed, so the
//! filter's probe positions are taken straight from the id's bytes.

const PROBES: usize = 7;
const BITS_PER_ENTRY: usize = 10;

#[derive(Debug, Clone)]
pub struct Bloom {
    bits: Vec<u64>,
    mask: u64,
}

impl Bloom {
    /// A filter sized for about `capacity` entries at roughly 1% false positives.
    pub fn with_capacity(capacity: usize) -> Self {
        let wanted = (capacity.max(1024) * BITS_PER_ENTRY).next_power_of_two();
        Bloom {
            bits: vec![0; wanted / 64],
            mask: wanted as u64 - 1,
        }
    }

    fn positions(&self, id: &[u8; 32]) -> [u64; PROBES] {
        std::array::from_fn(|i| {
            let word = u64::from_le_bytes(id[i * 4..i * 4 + 8].try_into().expect("8 bytes"));
            word & self.mask
        })
    }

    pub fn insert(&mut self, id: &[u8; 32]) {
        for bit in self.positions(id) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// `false` means certainly absent; `true` means probably present.
    pub fn may_contain(&self, id: &[u8; 32]) -> bool {
        self.positions(id)
            .into_iter()
            .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    pub fn memory_bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut bloom = Bloom::with_capacity(10_000);
        let ids: Vec<[u8; 32]> = (0..10_000u32)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect();
        ids.iter().for_each(|id| bloom.insert(id));
        assert!(ids.iter().all(|id| bloom.may_contain(id)));
        let false_positives = (10_000..30_000u32)
            .filter(|i| bloom.may_contain(blake3::hash(&i.to_le_bytes()).as_bytes()))
            .count();
        assert!(
            false_positives < 20_000 / 50,
            "{false_positives} false positives"
        );
    }
}
