//! A batch task's inputs made readable: `http` sources downloaded, `druid` sources read from
//! their segments into JSON lines, `combining` sources gathered delegate by delegate; local and
//! inline inputs as they are.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use chrono::{DateTime, Utc};
use drover_core::interval::Interval;
use drover_core::segment::DataSegment;
use drover_ingest::input::{resolve, Input};
use drover_ingest::input_policy::InputPolicy;
use drover_ingest::spec::{Filter, InputSource};
use drover_ingest::timestamp::TimestampSpec;
use serde_json::{json, Value};

use crate::deep_storage::DeepStorage;
use crate::failure::TaskFailure;
use crate::overlord_client::OverlordClient;

/// A task's inputs made readable, and the ids of the segments `druid` sources read (a REPLACE
/// publish names them: what was appended under its lock and read already is not carried into
/// its version again).
#[derive(Default)]
pub struct Gathered {
    pub inputs: Vec<Input>,
    pub segments_read: Vec<String>,
}

/// The inputs of `source`, in order, fetched or read into `dir` where needed.
pub fn gather<'a>(
    source: &'a InputSource,
    timestamp: &'a TimestampSpec,
    overlord: &'a OverlordClient,
    deep: &'a DeepStorage,
    dir: &'a Path,
) -> Pin<Box<dyn Future<Output = Result<Gathered, TaskFailure>> + 'a>> {
    Box::pin(async move {
        let inputs = |inputs| Gathered {
            inputs,
            segments_read: Vec::new(),
        };
        match source {
            InputSource::Http { uris } => download(uris, dir).await.map(inputs),
            InputSource::S3(s3) => crate::s3_input::download(s3, dir).await.map(inputs),
            InputSource::Local { .. } => {
                let files = resolve(source)?;
                let policy = InputPolicy::from_env();
                for input in &files {
                    if let Input::File(path) = input {
                        // Symlinks resolved: the file actually opened is what is checked.
                        let real = std::fs::canonicalize(path)
                            .map_err(|e| fail!("cannot read {}: {e}", path.display()))?;
                        policy.check_local(&real).map_err(|e| fail!("{e}"))?;
                    }
                }
                Ok(inputs(files))
            }
            InputSource::Druid {
                data_source,
                interval,
                filter,
                dimensions,
                metrics,
            } => {
                let columns = match (dimensions, metrics) {
                    (None, None) => None,
                    (d, m) => Some(d.iter().chain(m).flatten().cloned().collect::<Vec<_>>()),
                };
                let rows = SegmentRows {
                    interval: *interval,
                    filter: filter.as_ref(),
                    columns: columns.as_deref(),
                    timestamp,
                };
                let (path, segments_read) = rows.read(data_source, overlord, deep, dir).await?;
                Ok(Gathered {
                    inputs: vec![Input::Rows(path)],
                    segments_read,
                })
            }
            InputSource::Combining(delegates) => {
                let mut all = Gathered::default();
                for (i, d) in delegates.iter().enumerate() {
                    let dir = dir.join(format!("delegate-{i}"));
                    let g = gather(d, timestamp, overlord, deep, &dir).await?;
                    all.inputs.extend(g.inputs);
                    all.segments_read.extend(g.segments_read);
                }
                Ok(all)
            }
            other => Ok(inputs(resolve(other)?)),
        }
    })
}

/// What a `druid` source keeps of its segments' rows.
struct SegmentRows<'a> {
    interval: Interval,
    filter: Option<&'a Filter>,
    /// Besides `__time`; all columns when `None`.
    columns: Option<&'a [String]>,
    timestamp: &'a TimestampSpec,
}

impl SegmentRows<'_> {
    /// Reads the used segments of `data_source` overlapping the interval into one JSON-lines
    /// file: the rows inside the interval that pass the filter. Answers the file and the ids of
    /// the segments read.
    async fn read(
        &self,
        data_source: &str,
        overlord: &OverlordClient,
        deep: &DeepStorage,
        dir: &Path,
    ) -> Result<(PathBuf, Vec<String>), TaskFailure> {
        let started = std::time::Instant::now();
        let answer = overlord
            .submit(json!({"type": "segmentListUsed", "dataSource": data_source,
                "intervals": [self.interval]}))
            .await?;
        let segments: Vec<DataSegment> = serde_json::from_value(answer)
            .map_err(|e| fail!("segmentListUsed answered something unreadable: {e}"))?;
        std::fs::create_dir_all(dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("druid-{data_source}.json"));
        let file = std::fs::File::create(&path)
            .map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let mut kept = 0u64;
        for segment in &segments {
            // A used segment can be partly overshadowed (a newer version over some of its
            // time): those of its rows are not current, as in Druid's timeline.
            let newer: Vec<Interval> = segments
                .iter()
                .filter(|s| s.version > segment.version && s.interval.overlaps(&segment.interval))
                .map(|s| s.interval)
                .collect();
            let bytes = deep.read(&segment.load_spec).await?;
            if self.filter.is_none() && self.columns.is_none() {
                // Every column of every current row: written straight from the columns.
                kept += self
                    .write_whole(bytes, &newer, &mut out)
                    .map_err(|e| fail!("cannot read segment [{}]: {e}", segment.id()))?;
                continue;
            }
            let rows = drover_ingest::segment::read_parquet(bytes)
                .map_err(|e| fail!("cannot read segment [{}]: {e}", segment.id()))?;
            for row in rows {
                if let Some(line) = self.keep(row, &newer) {
                    writeln!(out, "{line}")
                        .map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
                    kept += 1;
                }
            }
        }
        out.flush()
            .map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        println!(
            "druid input [{data_source}] {}: {kept} row(s) from {} segment(s) in {} ms",
            self.interval,
            segments.len(),
            started.elapsed().as_millis()
        );
        Ok((path, segments.iter().map(DataSegment::id).collect()))
    }

    /// Writes the rows of one segment file inside the interval and outside `newer` as JSON
    /// lines, all columns; answers how many.
    fn write_whole(
        &self,
        bytes: Vec<u8>,
        newer: &[Interval],
        out: &mut dyn Write,
    ) -> Result<u64, drover_ingest::segment::SegmentError> {
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let keep = |ms: i64| {
            let t = at(ms);
            self.interval.contains(t) && !newer.iter().any(|i| i.contains(t))
        };
        let millis = |ms: i64| json!(ms);
        let formatted = |ms: i64| time_as(&self.timestamp.format, at(ms));
        let column = self.timestamp.column.as_str();
        let fields: Vec<drover_ingest::segment::TimeField<'_>> = if column == "__time" {
            vec![("__time", &formatted)]
        } else {
            vec![("__time", &millis), (column, &formatted)]
        };
        drover_ingest::segment::write_json_lines(bytes, out, &keep, &fields)
    }

    /// The row as the build reads it, or `None` when it is outside the interval, inside a newer
    /// segment's interval (`newer`), or filtered out.
    fn keep(&self, row: Value, newer: &[Interval]) -> Option<Value> {
        let Value::Object(mut row) = row else {
            return None;
        };
        let time = row
            .get("__time")
            .and_then(Value::as_str)
            .and_then(drover_core::time::parse_iso)?;
        if !self.interval.contains(time) || newer.iter().any(|i| i.contains(time)) {
            return None;
        }
        if let Some(f) = self.filter {
            if !drover_ingest::filter::matches(f, &|d: &str| {
                drover_ingest::filter::json_values(&row, d)
            }) {
                return None;
            }
        }
        if let Some(columns) = self.columns {
            row.retain(|k, _| columns.contains(k));
        }
        // `__time` in milliseconds, as Druid's druid input source gives it; the spec's timestamp
        // column (`__time` too, usually) written the way its format reads it.
        row.insert("__time".into(), json!(time.timestamp_millis()));
        row.insert(
            self.timestamp.column.clone(),
            time_as(&self.timestamp.format, time),
        );
        Some(Value::Object(row))
    }
}

/// `time` as a value the timestamp `format` parses.
fn time_as(format: &str, time: DateTime<Utc>) -> Value {
    match format {
        "millis" | "auto" => json!(time.timestamp_millis()),
        "posix" => json!(time.timestamp()),
        "micro" => json!(time.timestamp_micros()),
        "nano" => json!(time.timestamp_nanos_opt()),
        _ => json!(drover_core::time::to_iso(time)),
    }
}

async fn download(uris: &[String], dir: &Path) -> Result<Vec<Input>, TaskFailure> {
    std::fs::create_dir_all(dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    let policy = InputPolicy::from_env();
    let mut out = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        let url = policy.check_uri(uri).map_err(|e| fail!("{e}"))?;
        let name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|n| !n.is_empty())
            .unwrap_or("input")
            .replace(
                |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'),
                "_",
            );
        let path: PathBuf = dir.join(format!("http-{i}-{name}"));
        let bytes = fetch(&policy, uri, url).await?;
        std::fs::write(&path, &bytes).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        out.push(Input::File(path));
    }
    Ok(out)
}

/// Redirects `fetch` follows, each checked as the first URL was.
const MAX_REDIRECTS: usize = 5;

/// GETs `url` under `policy`: the host's addresses are resolved here and every one checked, the
/// connection pinned to the one checked (a second lookup cannot answer differently), and each
/// redirect checked the same way before it is followed.
async fn fetch(policy: &InputPolicy, uri: &str, mut url: url::Url) -> Result<Vec<u8>, TaskFailure> {
    let failed = |e: &dyn std::fmt::Display| fail!("cannot fetch http input [{uri}]: {e}");
    for _ in 0..=MAX_REDIRECTS {
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|e| failed(&e))?
            .collect();
        let Some(first) = addrs.first().copied() else {
            return Err(failed(&format!("[{host}] resolves to no address")));
        };
        for a in &addrs {
            policy
                .check_address(uri, &host, a.ip())
                .map_err(|e| fail!("{e}"))?;
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&bare, first)
            .build()
            .map_err(|e| failed(&e))?;
        let r = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(&e))?;
        if r.status().is_redirection() {
            let location = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| failed(&format!("{} without a Location", r.status())))?;
            let next = url.join(location).map_err(|e| failed(&e))?;
            url = policy.check_uri(next.as_str()).map_err(|e| fail!("{e}"))?;
            continue;
        }
        let r = r.error_for_status().map_err(|e| failed(&e))?;
        return Ok(r.bytes().await.map_err(|e| failed(&e))?.to_vec());
    }
    Err(failed(&format!("more than {MAX_REDIRECTS} redirects")))
}
