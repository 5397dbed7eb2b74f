//! A string dimension's Parquet column chunk written straight from Drover's dictionary ids.
//!
//! Every string value was already interned once while the rows were read, so a row holds a
//! `u32` id. The Arrow writer would have the strings copied into an Arrow array and then look
//! every one of them up again in Parquet's own dictionary. Here the chunk's dictionary is built
//! from the ids alone: a row group's distinct ids get dense indices through a plain array (no
//! hashing, no string comparison), the dictionary page holds their strings once, and the data
//! page holds the indices, RLE / bit-packed. The chunk is then spliced into the row group with
//! [`parquet::file::writer::SerializedRowGroupWriter::append_column`].
//!
//! The layout is what Parquet writers produce for a dictionary-encoded optional column: a
//! `PLAIN` dictionary page, then one v1 data page (definition levels, then `RLE_DICTIONARY`
//! indices), Snappy-compressed, with the chunk's min, max and null count.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::dictionary::{Dictionary, DimValue};

/// Buffers reused from one column chunk to the next.
pub struct DictColumnEncoder {
    /// Dictionary id → its index in the chunk's dictionary, plus one (0: not seen yet). Reset
    /// after each chunk through `used`, so a chunk costs what it holds, not the dictionary's size.
    local: Vec<u32>,
    /// The chunk's distinct ids, in the order of their indices.
    used: Vec<u32>,
    indices: Vec<u32>,
    levels: Vec<u32>,
    page: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for DictColumnEncoder {
    fn default() -> Self {
        DictColumnEncoder {
            local: Vec::new(),
            used: Vec::new(),
            indices: Vec::new(),
            levels: Vec::new(),
            page: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

/// An encoded column chunk, ready for `append_column`.
pub struct EncodedChunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

impl DictColumnEncoder {
    /// Encodes one row group's values of a string column: `ids` are the rows' ids in `dict`
    /// (null, and any value that is not a single string, is written as null).
    pub fn encode(
        &mut self,
        descr: ColumnDescPtr,
        dict: &Dictionary,
        ids: impl ExactSizeIterator<Item = u32>,
    ) -> Result<EncodedChunk, ParquetError> {
        let rows = ids.len();
        if self.local.len() < dict.len() {
            self.local.resize(dict.len(), 0);
        }
        self.used.clear();
        self.indices.clear();
        self.levels.clear();
        let mut nulls = 0u64;
        for id in ids {
            let present = matches!(dict.get(id), DimValue::String(_));
            self.levels.push(present as u32);
            if !present {
                nulls += 1;
                continue;
            }
            let slot = &mut self.local[id as usize];
            if *slot == 0 {
                self.used.push(id);
                *slot = self.used.len() as u32;
            }
            self.indices.push(*slot - 1);
        }
        for &id in &self.used {
            self.local[id as usize] = 0;
        }
        let string = |id: u32| match dict.get(id) {
            DimValue::String(s) => s.as_bytes(),
            _ => unreachable!("only strings are given indices"),
        };

        let mut sink = TrackedWrite::new(Vec::new());
        let mut uncompressed_total = 0i64;
        let mut dictionary_offset = None;
        let mut pages = SerializedPageWriter::new(&mut sink);
        if !self.used.is_empty() {
            self.page.clear();
            for &id in &self.used {
                let s = string(id);
                self.page.extend_from_slice(&(s.len() as u32).to_le_bytes());
                self.page.extend_from_slice(s);
            }
            let page = Page::DictionaryPage {
                buf: self.compressed()?,
                num_values: self.used.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            };
            let spec = pages.write_page(CompressedPage::new(page, self.page.len()))?;
            uncompressed_total += (spec.uncompressed_size + header_size(&spec)) as i64;
            dictionary_offset = Some(spec.offset as i64);
        }

        // Definition levels (1: a value, 0: null), length-prefixed; then the indices.
        self.page.clear();
        self.page.extend_from_slice(&[0; 4]);
        rle_hybrid(&self.levels, 1, &mut self.page);
        let levels_len = (self.page.len() - 4) as u32;
        self.page[..4].copy_from_slice(&levels_len.to_le_bytes());
        let encoding = if self.used.is_empty() {
            // No values at all: nothing follows the levels, and no dictionary is needed.
            Encoding::PLAIN
        } else {
            let width = bit_width(self.used.len() as u32 - 1);
            self.page.push(width);
            rle_hybrid(&self.indices, width, &mut self.page);
            Encoding::RLE_DICTIONARY
        };
        let page = Page::DataPage {
            buf: self.compressed()?,
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = pages.write_page(CompressedPage::new(page, self.page.len()))?;
        uncompressed_total += (spec.uncompressed_size + header_size(&spec)) as i64;
        let data_offset = spec.offset as i64;
        pages.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let (min, max) = self
            .used
            .iter()
            .map(|&id| string(id))
            .fold(None, |acc: Option<(&[u8], &[u8])>, s| match acc {
                None => Some((s, s)),
                Some((lo, hi)) => Some((lo.min(s), hi.max(s))),
            })
            .map_or((None, None), |(lo, hi)| {
                (
                    Some(ByteArray::from(lo.to_vec())),
                    Some(ByteArray::from(hi.to_vec())),
                )
            });
        let statistics =
            Statistics::ByteArray(ValueStatistics::new(min, max, None, Some(nulls), false));
        let mut encodings = vec![Encoding::RLE, Encoding::PLAIN];
        if dictionary_offset.is_some() {
            encodings.push(Encoding::RLE_DICTIONARY);
        }
        let metadata = ColumnChunkMetaData::builder(descr)
            .set_encodings(encodings)
            .set_compression(Compression::SNAPPY)
            .set_num_values(rows as i64)
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size(uncompressed_total)
            .set_data_page_offset(data_offset)
            .set_dictionary_page_offset(dictionary_offset)
            .set_statistics(statistics)
            .build()?;
        Ok(EncodedChunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index: None,
                offset_index: None,
            },
            bytes,
        })
    }

    /// The page buffer, Snappy-compressed (Parquet's `SNAPPY` is the raw block format).
    fn compressed(&mut self) -> Result<Bytes, ParquetError> {
        let out = self
            .snappy
            .compress_vec(&self.page)
            .map_err(|e| ParquetError::General(format!("snappy: {e}")))?;
        Ok(Bytes::from(out))
    }
}

/// A page's header bytes: what was written beyond its (compressed) body.
fn header_size(spec: &parquet::column::page::PageWriteSpec) -> usize {
    spec.bytes_written as usize - spec.compressed_size
}

/// Bits needed for values up to `max` (at least one: some readers dislike width 0).
fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()).max(1) as u8
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// How many values from `at` equal `values[at]`, counting no further than `limit`.
fn run_at(values: &[u32], at: usize, limit: usize) -> usize {
    let v = values[at];
    values[at..]
        .iter()
        .take(limit)
        .take_while(|&&x| x == v)
        .count()
}

/// Parquet's RLE / bit-packed hybrid encoding of `values` at `width` bits each (no length
/// prefix): a run of eight or more equal values is one RLE run; other values are bit-packed in
/// groups of eight. Only the last group may be padded (a reader stops at the page's count).
pub(crate) fn rle_hybrid(values: &[u32], width: u8, out: &mut Vec<u8>) {
    const RUN: usize = 8;
    let value_bytes = (width as usize).div_ceil(8);
    let mut i = 0;
    while i < values.len() {
        let run = run_at(values, i, usize::MAX);
        if run >= RUN {
            varint((run as u64) << 1, out);
            out.extend_from_slice(&values[i].to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Bit-pack whole groups of eight until a long run starts at a group's boundary.
        let start = i;
        loop {
            i = (i + RUN).min(values.len());
            if i == values.len() || run_at(values, i, RUN) >= RUN {
                break;
            }
        }
        let groups = (i - start).div_ceil(RUN);
        varint(((groups as u64) << 1) | 1, out);
        let mut acc = 0u64;
        let mut bits = 0u32;
        let padded = values[start..i]
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(groups * RUN);
        for v in padded {
            acc |= (v as u64) << bits;
            bits += width as u32;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dictionary::Probe;
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    /// Writes `columns` (ids in `dict`) as a Parquet file whose string columns come from the
    /// encoder, and reads it back with the arrow reader: the values, and the chunk statistics.
    fn round_trip(dict: &Dictionary, columns: &[Vec<u32>]) -> (Vec<Vec<Option<String>>>, Bytes) {
        let fields: Vec<Field> = (0..columns.len())
            .map(|c| Field::new(format!("c{c}"), DataType::Utf8, true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
        let (mut file, _factory) = writer.into_serialized_writer().unwrap();
        let descrs: Vec<ColumnDescPtr> = (0..columns.len())
            .map(|c| file.schema_descr().column(c))
            .collect();
        let mut encoder = DictColumnEncoder::default();
        // Two row groups: the encoder's buffers are reused.
        for _ in 0..2 {
            let mut group = file.next_row_group().unwrap();
            for (c, ids) in columns.iter().enumerate() {
                let chunk = encoder
                    .encode(descrs[c].clone(), dict, ids.iter().copied())
                    .unwrap();
                group.append_column(&chunk.bytes, chunk.close).unwrap();
            }
            group.close().unwrap();
        }
        let bytes = Bytes::from(file.into_inner().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let read = (0..columns.len())
            .map(|c| {
                let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(c).clone()).collect();
                arrays
                    .iter()
                    .flat_map(|a| {
                        let s: &StringArray = a.as_string();
                        (0..s.len())
                            .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .collect();
        (read, bytes)
    }

    #[test]
    fn strings_nulls_runs_and_wide_dictionaries_read_back() {
        let mut dict = Dictionary::default();
        let ids: Vec<u32> = (0..300)
            .map(|i| dict.intern(Probe::Str(&format!("value {i:03}"))))
            .collect();
        let long = dict.intern(Probe::Long(5));
        // A column mixing bit-packed stretches, long runs, nulls and a non-string value; one
        // all null; one constant.
        let mixed: Vec<u32> = (0..5000u32)
            .map(|i| match i % 1000 {
                0..=9 => 0,
                10..=400 => ids[(i as usize * 7) % 300],
                401..=600 => ids[3],
                601 => long,
                _ => ids[(i as usize / 50) % 300],
            })
            .collect();
        let constant = vec![ids[9]; 5000];
        let rows = 5000;
        let (read, bytes) = round_trip(&dict, &[mixed.clone(), vec![0; rows], constant.clone()]);
        let expect = |ids: &[u32]| -> Vec<Option<String>> {
            ids.iter()
                .map(|&id| match dict.get(id) {
                    DimValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect()
        };
        let twice = |v: Vec<Option<String>>| [v.clone(), v].concat();
        assert_eq!(read[0], twice(expect(&mixed)));
        assert!(read[1].iter().all(Option::is_none));
        assert_eq!(read[1].len(), 2 * rows);
        assert_eq!(read[2], twice(expect(&constant)));

        let meta = parquet::file::reader::FileReader::metadata(
            &parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap(),
        )
        .clone();
        let chunk = meta.row_group(0).column(0);
        let Some(Statistics::ByteArray(s)) = chunk.statistics() else {
            panic!("no statistics")
        };
        let present: Vec<String> = expect(&mixed).into_iter().flatten().collect();
        assert_eq!(
            s.min_opt().unwrap().as_utf8().unwrap(),
            present.iter().min().unwrap()
        );
        assert_eq!(
            s.max_opt().unwrap().as_utf8().unwrap(),
            present.iter().max().unwrap()
        );
        assert_eq!(
            s.null_count_opt(),
            Some(mixed.iter().filter(|&&id| id == 0 || id == long).count() as u64)
        );
        assert!(chunk.dictionary_page_offset().is_some());
    }

    #[test]
    fn hybrid_runs_decode_as_written() {
        // Decoded by hand: each run's header, then its values.
        let values: Vec<u32> =
            [vec![1, 2, 3], vec![5; 20], vec![0, 1, 0, 1, 0, 1, 0, 1, 1]].concat();
        let mut out = Vec::new();
        rle_hybrid(&values, 3, &mut out);
        let mut decoded = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let (mut header, mut shift) = (0u64, 0);
            loop {
                let b = out[at];
                at += 1;
                header |= ((b & 0x7f) as u64) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            if header & 1 == 1 {
                let n = (header >> 1) as usize * 8;
                let bytes = &out[at..at + n * 3 / 8];
                at += n * 3 / 8;
                let mut bits = 0u64;
                let mut have = 0;
                let mut bytes = bytes.iter();
                for _ in 0..n {
                    while have < 3 {
                        bits |= (*bytes.next().unwrap() as u64) << have;
                        have += 8;
                    }
                    decoded.push((bits & 7) as u32);
                    bits >>= 3;
                    have -= 3;
                }
            } else {
                let n = (header >> 1) as usize;
                decoded.extend(std::iter::repeat_n(out[at] as u32, n));
                at += 1;
            }
        }
        assert_eq!(&decoded[..values.len()], &values[..]);
        assert!(decoded[values.len()..].iter().all(|&v| v == 0), "padding");
        assert!(
            decoded.len() - values.len() < 8,
            "only the last group is padded"
        );
    }
}
