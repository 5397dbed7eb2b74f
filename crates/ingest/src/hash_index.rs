//! Entries of the hash tables that index values (dictionaries) and rows (rollup) by position:
//! each keeps half its key's hash beside the position, so that growing a table places entries
//! without reading (and hashing) every key again, and keys that only share the table's few hash
//! bits are told apart without being read — both are cache misses on large tables.

/// A position with half its key's hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub hash: u32,
    pub id: u32,
}

impl Entry {
    /// The hash the table places the entry by, rebuilt from the half it keeps.
    pub fn table_hash(&self) -> u64 {
        spread(self.hash)
    }
}

/// A table hash from half a hash: the table takes its position from the low bits and its
/// tag from the top ones, so the half is put in both.
pub(crate) fn spread(half: u32) -> u64 {
    (u64::from(half) << 32) | u64::from(half)
}
