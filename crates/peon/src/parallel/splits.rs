//! How an `index_parallel` task cuts its input into sub-tasks' splits, as Druid's
//! `maxSize` split hint does: files in order, a split closed before it would pass
//! `maxSplitSize` bytes (a bigger file is a split of its own) or hold `maxNumFiles` files.
//! Only `local` and `http` sources split; any other source makes the task run alone
//! (Druid's sequential mode for a source that is not splittable).

use drover_ingest::input::{resolve, Input};
use drover_ingest::spec::{InputSource, ParallelTuning};
use serde_json::{json, Value};

use crate::failure::TaskFailure;

/// The splits of `source` (whose JSON is `source_json`), each as an input source's JSON; `None`
/// when the source cannot be split.
pub async fn split(
    source: &InputSource,
    source_json: &Value,
    tuning: &ParallelTuning,
) -> Result<Option<Vec<Value>>, TaskFailure> {
    match source {
        InputSource::S3(s3) => {
            let objects = crate::s3_input::list(s3).await?;
            let sized: Vec<(String, u64)> = objects
                .iter()
                .map(|o| (format!("{}/{}", o.bucket, o.key), o.size))
                .collect();
            Ok(Some(
                group(&sized, tuning)
                    .into_iter()
                    .map(|names| {
                        let mut s = source_json.clone();
                        if let Some(obj) = s.as_object_mut() {
                            for key in ["uris", "prefixes", "objectGlob"] {
                                obj.remove(key);
                            }
                        }
                        s["objects"] = names
                            .iter()
                            .map(|n| {
                                let (bucket, path) = n.split_once('/').unwrap_or((n, ""));
                                json!({"bucket": bucket, "path": path})
                            })
                            .collect();
                        s
                    })
                    .collect(),
            ))
        }
        InputSource::Local { .. } => {
            let mut files = Vec::new();
            for input in resolve(source)? {
                if let Input::File(path) = input {
                    let size = std::fs::metadata(&path)
                        .map_err(|e| fail!("cannot read {}: {e}", path.display()))?
                        .len();
                    let path = std::path::absolute(&path).unwrap_or(path);
                    files.push((path.display().to_string(), size));
                }
            }
            Ok(Some(
                group(&files, tuning)
                    .into_iter()
                    .map(|files| json!({"type": "local", "files": files}))
                    .collect(),
            ))
        }
        InputSource::Http { uris } => {
            // Sizes are not known without asking: files are counted only.
            let sized: Vec<(String, u64)> = uris.iter().map(|u| (u.clone(), 0)).collect();
            Ok(Some(
                group(&sized, tuning)
                    .into_iter()
                    .map(|uris| {
                        let mut s = source_json.clone();
                        s["uris"] = json!(uris);
                        s
                    })
                    .collect(),
            ))
        }
        _ => Ok(None),
    }
}

/// Groups named sizes into splits by `maxSplitSize` and `maxNumFiles`.
fn group(files: &[(String, u64)], tuning: &ParallelTuning) -> Vec<Vec<String>> {
    let mut splits: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    for (name, size) in files {
        let too_big = !current.is_empty() && bytes.saturating_add(*size) > tuning.max_split_size;
        if too_big || current.len() >= tuning.max_num_files {
            splits.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(name.clone());
        bytes = bytes.saturating_add(*size);
    }
    if !current.is_empty() {
        splits.push(current);
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(max_split_size: u64, max_num_files: usize) -> ParallelTuning {
        ParallelTuning {
            max_split_size,
            max_num_files,
            ..ParallelTuning::default()
        }
    }

    fn files(sizes: &[u64]) -> Vec<(String, u64)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("f{i}"), *s))
            .collect()
    }

    #[test]
    fn splits_close_before_the_size_or_the_count_is_passed() {
        let f = files(&[40, 40, 40, 200, 10]);
        assert_eq!(
            group(&f, &tuning(100, 1000)),
            vec![vec!["f0", "f1"], vec!["f2"], vec!["f3"], vec!["f4"]]
        );
        assert_eq!(
            group(&f, &tuning(u64::MAX, 2)),
            vec![vec!["f0", "f1"], vec!["f2", "f3"], vec!["f4"]]
        );
        assert!(group(&[], &tuning(1, 1)).is_empty());
    }

    #[tokio::test]
    async fn local_files_split_and_other_sources_do_not() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.json", "b.json", "c.json"] {
            std::fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        let local = InputSource::Local {
            base_dir: Some(dir.path().display().to_string()),
            filter: Some("*.json".into()),
            files: Vec::new(),
        };
        let splits = split(&local, &json!({}), &tuning(u64::MAX, 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(splits.len(), 2);
        assert_eq!(splits[0]["type"], "local");
        assert_eq!(splits[0]["files"].as_array().unwrap().len(), 2);
        let inline = InputSource::Inline { data: "{}".into() };
        assert!(split(&inline, &json!({}), &tuning(1, 1))
            .await
            .unwrap()
            .is_none());
        let http = InputSource::Http {
            uris: vec!["http://a/1".into(), "http://a/2".into()],
        };
        let splits = split(
            &http,
            &json!({"type": "http", "uris": [], "httpAuthenticationUsername": "u"}),
            &tuning(1, 1),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            splits[1],
            json!({"type": "http", "uris": ["http://a/2"], "httpAuthenticationUsername": "u"})
        );
    }
}
