//! Where Druid's tutorial specs and data are, for tests: `DROVER_TUTORIAL_DIR`, else
//! `shared/specs/druid-tutorial` in the nearest ancestor of this crate that has it (the project's
//! `shared/` sits beside the checkout).

use std::path::PathBuf;

pub fn tutorial_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DROVER_TUTORIAL_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/specs/druid-tutorial"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "Druid's tutorial files were not found in any shared/specs/druid-tutorial above {}; \
                 set DROVER_TUTORIAL_DIR",
                manifest.display()
            )
        })
}

pub fn tutorial_file(name: &str) -> String {
    let path = tutorial_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
