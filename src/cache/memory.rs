//! The memory tier of the block cache: an LRU bounded in bytes rather than in entries, because
//! the last block of a file may be shorter than the others.
use bytes::Bytes;
use lru::LruCache;

use super::BlockKey;

/// Blocks in memory, least recently used first out.
pub(crate) struct MemoryTier {
    lru: LruCache<BlockKey, Bytes>,
    bytes: u64,
    capacity: u64,
    evictions: u64,
}

impl MemoryTier {
    /// An empty tier that never holds more than `capacity` bytes of blocks.
    pub(crate) fn new(capacity: u64) -> Self {
        MemoryTier {
            lru: LruCache::unbounded(),
            bytes: 0,
            capacity,
            evictions: 0,
        }
    }

    /// The block, marked as just used.
    pub(crate) fn get(&mut self, key: &BlockKey) -> Option<Bytes> {
        self.lru.get(key).cloned()
    }

    /// Whether the block is held, without changing its recency.
    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        self.lru.contains(key)
    }

    /// Stores a block, evicting the least recently used ones until it fits. A block larger than
    /// the whole tier is not kept.
    pub(crate) fn insert(&mut self, key: BlockKey, data: Bytes) {
        if let Some(old) = self.lru.pop(&key) {
            self.bytes -= old.len() as u64;
        }
        let size = data.len() as u64;
        if size > self.capacity {
            return;
        }
        while self.bytes + size > self.capacity {
            match self.lru.pop_lru() {
                Some((_, old)) => {
                    self.bytes -= old.len() as u64;
                    self.evictions += 1;
                }
                None => break,
            }
        }
        self.bytes += size;
        self.lru.push(key, data);
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Blocks held.
    pub(crate) fn entries(&self) -> u64 {
        self.lru.len() as u64
    }

    /// Blocks dropped so far to respect the bound.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn least_recently_used_block_goes_first() {
        let mut tier = MemoryTier::new(30);
        tier.insert((1, 0), block(10));
        tier.insert((1, 1), block(10));
        tier.insert((1, 2), block(10));
        assert!(tier.get(&(1, 0)).is_some());
        tier.insert((1, 3), block(10));
        assert!(tier.contains(&(1, 0)));
        assert!(!tier.contains(&(1, 1)));
        assert_eq!(tier.evictions(), 1);
    }

    #[test]
    fn block_larger_than_the_tier_is_not_kept() {
        let mut tier = MemoryTier::new(10);
        tier.insert((1, 0), block(5));
        tier.insert((1, 1), block(11));
        assert!(!tier.contains(&(1, 1)));
        assert!(tier.contains(&(1, 0)));
        assert_eq!(tier.bytes(), 5);
    }

    #[test]
    fn reinserting_a_block_replaces_it_without_double_counting() {
        let mut tier = MemoryTier::new(100);
        tier.insert((1, 0), block(10));
        tier.insert((1, 0), block(4));
        assert_eq!(tier.bytes(), 4);
        assert_eq!(tier.entries(), 1);
    }

    proptest! {
        #[test]
        fn byte_bound_holds_under_random_inserts(
            capacity in 0u64..200,
            ops in prop::collection::vec((0u64..4, 0u64..16, 0usize..64), 1..200),
        ) {
            let mut tier = MemoryTier::new(capacity);
            for (file, index, len) in ops {
                tier.insert((file, index), block(len));
                prop_assert!(tier.bytes() <= capacity);
                let counted: u64 = tier.lru.iter().map(|(_, b)| b.len() as u64).sum();
                prop_assert_eq!(counted, tier.bytes());
            }
        }
    }
}
