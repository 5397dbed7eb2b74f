//! Byte-level helpers for the per-value hot path of reading input.

/// Byte equality with short values compared in registers: most dimension values are a few
/// to a few dozen bytes, where calling `memcmp` costs more than the comparison.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    match n {
        0..4 => a == b,
        4..8 => {
            let half =
                |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4"));
            half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
        }
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` less than `n` (at most 128), flagged by their high bit. The lowest flag
/// is exact; flags above a flagged byte may be false (a borrow runs upwards only), which does
/// not matter to a search for the first one.
fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// The bytes of `word` equal to `b`, flagged as [`below`] flags them.
fn equal(word: u64, b: u8) -> u64 {
    below(word ^ (ONES * u64::from(b)), 1)
}

/// Where the first `"`, `\\` or control character of `bytes` is: the end of a JSON string with
/// no escape in it. Sixteen bytes at a time with SSE2 (every x86-64 has it), then eight.
pub(crate) fn string_end(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    let mut at = {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
        let (found, at) = unsafe { string_end_sse2(bytes) };
        if found {
            return Some(at);
        }
        at
    };
    #[cfg(not(target_arch = "x86_64"))]
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let found = equal(word, b'"') | equal(word, b'\\') | below(word, 0x20);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + tail)
}

/// [`string_end`] over whole blocks of sixteen bytes: `(true, where)` when one holds a special
/// byte, else `(false, where the blocks end)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn string_end_sse2(bytes: &[u8]) -> (bool, usize) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let below_space = _mm_set1_epi8(0x1f);
    let mut at = 0;
    while let Some(block) = bytes.get(at..at + 16) {
        // SAFETY: `block` is 16 readable bytes; the load has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().cast::<__m128i>()) };
        // A byte is a control character when the unsigned minimum of it and 0x1f is itself.
        let special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v),
        );
        let mask = _mm_movemask_epi8(special) as u32;
        if mask != 0 {
            return (true, at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    (false, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_end_finds_the_first_special_byte() {
        let slow = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"abc".to_vec(),
            b"no end at all here".to_vec(),
        ];
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0x1f, 0x00] {
                for at in 0..len {
                    let mut s: Vec<u8> = (0..len).map(|i| b"a\x7f \xc3!~#"[i % 7]).collect();
                    s[at] = special;
                    cases.push(s.clone());
                    // A second special byte after the first, and bytes just above the limits.
                    if at + 1 < len {
                        s[at + 1] = b'"';
                    }
                    s.push(0x20);
                    s.push(b'"' + 1);
                    cases.push(s);
                }
            }
        }
        for case in cases {
            assert_eq!(string_end(&case), slow(&case), "{case:?}");
        }
    }

    #[test]
    fn same_bytes_is_equality() {
        let words = [
            "",
            "a",
            "ab",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopqrstuvwxyz012345",
            "abcdefghijklmnopqrstuvwxyz0123456",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b);
                let mut c = a.as_bytes().to_vec();
                if let Some(last) = c.last_mut() {
                    *last ^= 1;
                    assert!(!same_bytes(a.as_bytes(), &c));
                }
                if c.len() > 5 {
                    c = a.as_bytes().to_vec();
                    let middle = c.len() / 2;
                    c[middle] ^= 0x80;
                    assert!(!same_bytes(a.as_bytes(), &c), "{a}");
                }
            }
        }
    }
}
