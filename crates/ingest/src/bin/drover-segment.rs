//! `drover-segment <file.parquet>`: prints a segment file's rows, one JSON object per line.

use std::io::{ErrorKind, Write};
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
    let rows = match drover_ingest::segment::read_parquet(bytes) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("drover-segment: {} is not a readable segment: {e}", args[1]);
            return ExitCode::from(1);
        }
    };
    // Written by hand rather than with println!, which panics when the reader goes away
    // (`drover-segment f.parquet | head`): a closed pipe just ends the output.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = rows
        .iter()
        .try_for_each(|row| writeln!(out, "{row}"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drover-segment: cannot write the rows: {e}");
            ExitCode::from(1)
        }
    }
}
