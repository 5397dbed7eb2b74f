//! Znode payloads are JSON, possibly gzip-compressed (Druid's `PotentiallyGzippedCompressionProvider`):
//! readers decompress only when the gzip magic is present. Drover writes plain JSON.

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("corrupt gzip payload: {0}")]
    Gzip(#[from] std::io::Error),
    #[error("invalid JSON payload: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(serde_json::from_slice(&out)?)
    } else {
        Ok(serde_json::from_slice(bytes)?)
    }
}

pub fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("payload types always serialize")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_plain_and_gzipped_json() {
        let plain: serde_json::Value = decode_json(br#"{"a":1}"#).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"a":1}"#).unwrap();
        let zipped: serde_json::Value = decode_json(&gz.finish().unwrap()).unwrap();
        assert_eq!(plain, zipped);
        assert!(decode_json::<serde_json::Value>(b"\x1f\x8bnot gzip").is_err());
    }
}
