//! `drover-segment <file.parquet>`: prints a segment file's rows, one JSON object per line.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 || args[1].starts_with('-') {
        eprintln!("usage: drover-segment <segment.parquet>");
        return ExitCode::from(64);
    }
    let bytes = match std::fs::read(&args[1]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("drover-segment: cannot read {}: {e}", args[1]);
            return ExitCode::from(1);
        }
    };
    match drover_ingest::segment::read_parquet(bytes) {
        Ok(rows) => {
            for row in rows {
                println!("{row}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("drover-segment: {} is not a readable segment: {e}", args[1]);
            ExitCode::from(1)
        }
    }
}
