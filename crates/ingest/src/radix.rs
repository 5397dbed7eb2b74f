//! A least-significant-digit radix sort of 64-bit keys, for the final sort of held rows when a
//! row's time and dimension ranks pack into one `u64`: a pass per byte that differs between
//! keys, each reading and writing the items once in order, where a comparison sort of a million
//! rows compares about twenty times per row, each comparison a branch that is hard to predict.

/// One item: its key, and the position it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keyed {
    pub key: u64,
    pub at: u32,
}

/// Sorts `items` by key, equal keys kept in their order (each pass is stable).
pub(crate) fn sort(items: &mut Vec<Keyed>) {
    if items.len() < 2 {
        return;
    }
    // Bytes where all keys agree order nothing: they are skipped.
    let (any, all) = items
        .iter()
        .fold((0u64, u64::MAX), |(any, all), k| (any | k.key, all & k.key));
    let varying = any ^ all;
    let mut from = std::mem::take(items);
    let mut to = vec![Keyed { key: 0, at: 0 }; from.len()];
    for byte in 0..8 {
        let shift = byte * 8;
        if (varying >> shift) & 0xff == 0 {
            continue;
        }
        let digit = |k: &Keyed| ((k.key >> shift) & 0xff) as usize;
        let mut starts = [0usize; 256];
        for k in &from {
            starts[digit(k)] += 1;
        }
        let mut next = 0;
        for s in starts.iter_mut() {
            let count = *s;
            *s = next;
            next += count;
        }
        for k in &from {
            let d = digit(k);
            to[starts[d]] = *k;
            starts[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    *items = from;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_a_stable_sort_does() {
        // Keys spread over some bytes only, with many repeats, and some extremes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (len, mask) in [
            (0, u64::MAX),
            (1, u64::MAX),
            (2, 0),
            (1000, 0xff),
            (5000, 0x00ff_0000_ff00_0f00),
            (5000, u64::MAX),
            (300, 0x8000_0000_0000_0001),
        ] {
            let mut items: Vec<Keyed> = (0..len)
                .map(|at| Keyed {
                    key: next() & mask,
                    at,
                })
                .collect();
            if len > 10 {
                items[3].key = mask;
                items[7].key = 0;
            }
            let mut expected = items.clone();
            expected.sort_by_key(|k| k.key);
            sort(&mut items);
            assert_eq!(items, expected, "{len} keys under {mask:#x}");
        }
    }
}
