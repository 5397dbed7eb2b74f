//! Input sources as readable streams: `inline` data, `local` files (`baseDir` with a wildcard
//! `filter` searched recursively, or a `files` list), with `.gz` files decompressed on the fly.
//! `http` sources are fetched to local files by the peon first, so everything here is blocking
//! and file-based.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::spec::InputSource;

/// Why a source's inputs cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("http and s3 inputs must be downloaded first")]
    NotDownloaded,
    #[error("druid inputs must be read from their segments first")]
    NotRead,
    #[error("a streaming task has no batch input")]
    Stream,
    #[error("local input baseDir [{}] is not a readable directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot list [{}]: {source}", dir.display())]
    List {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("local input file [{}] does not exist or is not a file", .0.display())]
    MissingFile(PathBuf),
    #[error("no input files matched filter [{filter}] under baseDir [{base_dir}]")]
    NoMatch { filter: String, base_dir: String },
}

/// One thing to read, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Inline(String),
    File(PathBuf),
    /// Rows a task read from segments (a `druid` source), as JSON lines whatever the spec's
    /// `inputFormat` says.
    Rows(PathBuf),
}

impl Input {
    pub fn describe(&self) -> String {
        match self {
            Input::Inline(_) => "inline data".into(),
            Input::File(p) => p.display().to_string(),
            Input::Rows(p) => format!("segment rows in {}", p.display()),
        }
    }

    /// A line reader; `.gz` files are gunzipped (concatenated members too, as `gzip` writes them).
    pub fn open(&self) -> std::io::Result<Box<dyn BufRead>> {
        match self {
            Input::Inline(data) => Ok(Box::new(Cursor::new(data.clone().into_bytes()))),
            Input::Rows(path) => Ok(Box::new(BufReader::with_capacity(
                1 << 16,
                File::open(path)?,
            ))),
            Input::File(path) => {
                let file = File::open(path)?;
                if path.extension().is_some_and(|e| e == "gz") {
                    Ok(Box::new(BufReader::with_capacity(
                        1 << 16,
                        MultiGzDecoder::new(BufReader::new(file)),
                    )))
                } else {
                    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
                }
            }
        }
    }
}

/// The inputs of a source, files sorted by path. An `http` source must have been replaced by
/// its downloaded files (`InputSource::Local { files, .. }`), and a `druid` one by the rows the
/// task read, before this is called.
pub fn resolve(source: &InputSource) -> Result<Vec<Input>, InputError> {
    match source {
        InputSource::Druid { .. } => Err(InputError::NotRead),
        InputSource::Combining(delegates) => {
            let mut inputs = Vec::new();
            for d in delegates {
                inputs.extend(resolve(d)?);
            }
            Ok(inputs)
        }
        InputSource::Inline { data } => Ok(vec![Input::Inline(data.clone())]),
        InputSource::Http { .. } | InputSource::S3(_) => Err(InputError::NotDownloaded),
        InputSource::Stream => Err(InputError::Stream),
        InputSource::Local {
            base_dir,
            filter,
            files,
        } => {
            let mut out: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
            if let Some(dir) = base_dir {
                let dir = Path::new(dir);
                if !dir.is_dir() {
                    return Err(InputError::NotADirectory(dir.to_path_buf()));
                }
                let mut found = Vec::new();
                walk(dir, filter.as_deref().unwrap_or("*"), &mut found).map_err(|source| {
                    InputError::List {
                        dir: dir.to_path_buf(),
                        source,
                    }
                })?;
                found.sort();
                out.extend(found);
            }
            if let Some(missing) = out.iter().find(|p| !p.is_file()) {
                return Err(InputError::MissingFile(missing.clone()));
            }
            if out.is_empty() {
                return Err(InputError::NoMatch {
                    filter: filter.as_deref().unwrap_or("*").to_string(),
                    base_dir: base_dir.as_deref().unwrap_or("").to_string(),
                });
            }
            Ok(out.into_iter().map(Input::File).collect())
        }
    }
}

fn walk(dir: &Path, filter: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, filter, out)?;
        } else if kind.is_file() && wildcard_match(filter, &entry.file_name().to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Druid's `WildcardFileFilter` on file names: `*` any run of characters, `?` one character.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn wildcards_match_like_druid() {
        assert!(wildcard_match("*.json.gz", "wiki-2015.json.gz"));
        assert!(!wildcard_match("*.json.gz", "wiki.json"));
        assert!(wildcard_match("rollup-data.json", "rollup-data.json"));
        assert!(wildcard_match("data-?.csv", "data-1.csv"));
        assert!(!wildcard_match("data-?.csv", "data-10.csv"));
        assert!(wildcard_match("*", "anything"));
    }

    #[test]
    fn finds_files_recursively_and_reads_gzip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"x\":1}\n").unwrap();
        let gz = std::fs::File::create(dir.path().join("sub/b.json.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(b"{\"x\":2}\n").unwrap();
        enc.finish().unwrap();
        std::fs::write(dir.path().join("c.txt"), "no").unwrap();
        let source = InputSource::Local {
            base_dir: Some(dir.path().display().to_string()),
            filter: Some("*.json*".into()),
            files: vec![],
        };
        let inputs = resolve(&source).unwrap();
        assert_eq!(inputs.len(), 2);
        let mut text = String::new();
        for i in &inputs {
            i.open().unwrap().read_to_string(&mut text).unwrap();
        }
        assert_eq!(text, "{\"x\":1}\n{\"x\":2}\n");
        let none = InputSource::Local {
            base_dir: Some(dir.path().display().to_string()),
            filter: Some("*.parquet".into()),
            files: vec![],
        };
        assert!(matches!(resolve(&none), Err(InputError::NoMatch { .. })));
    }
}
