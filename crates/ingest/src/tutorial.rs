//! Druid's tutorial specs and data, for tests: kept in the repository under
//! `tests/data/druid-tutorial` (their origin is noted there), so a plain clone runs every test.

use std::path::PathBuf;

pub fn tutorial_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/druid-tutorial")
}

pub fn tutorial_file(name: &str) -> String {
    let path = tutorial_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
