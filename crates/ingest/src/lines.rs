//! Lines of an input, served from the reader's own buffer: a line is copied only when it runs
//! over the end of that buffer, so reading a file costs one copy (the kernel's), not two.

use std::io::{self, BufRead};

pub struct Lines<R> {
    reader: R,
    /// A line that ran over the end of the reader's buffer, put together here.
    joined: Vec<u8>,
    /// Bytes of the reader's buffer that the line last served holds, consumed on the next call
    /// (the line borrows them until then).
    served: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader,
            joined: Vec::new(),
            served: 0,
        }
    }

    /// The next line with its `\n` (the last line may have none), or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.reader.consume(std::mem::take(&mut self.served));
        self.joined.clear();
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok((!self.joined.is_empty()).then_some(&self.joined[..]));
            }
            match memchr::memchr(b'\n', chunk) {
                Some(at) if self.joined.is_empty() => {
                    self.served = at + 1;
                    break;
                }
                Some(at) => {
                    self.joined.extend_from_slice(&chunk[..=at]);
                    self.reader.consume(at + 1);
                    return Ok(Some(&self.joined[..]));
                }
                None => {
                    let n = chunk.len();
                    self.joined.extend_from_slice(chunk);
                    self.reader.consume(n);
                }
            }
        }
        // Asked again: a buffer not yet consumed is returned as it is, without reading.
        let chunk = self.reader.fill_buf()?;
        Ok(Some(&chunk[..self.served]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        let mut lines = Lines::new(io::BufReader::with_capacity(capacity, text));
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(line.to_vec());
        }
        out
    }

    #[test]
    fn lines_across_buffer_ends_come_out_whole() {
        let text = b"first line\nsecond, a longer line\n\nlast without newline";
        let expected: Vec<Vec<u8>> = text
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        for capacity in [1, 2, 3, 7, 11, 64, 1 << 16] {
            assert_eq!(all(text, capacity), expected, "buffer of {capacity}");
        }
        assert!(all(b"", 8).is_empty());
        assert_eq!(all(b"\n", 8), vec![b"\n".to_vec()]);
    }
}
