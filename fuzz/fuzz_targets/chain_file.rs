//! The liftover chain-file reader: any bytes are read into a chain file or refused with an
//! `Err`, never a panic; a chain file read converts positions and intervals on the chromosomes
//! it names without panicking, and a zero-length interval on the positive strand is always
//! accepted.
#![no_main]

use std::path::Path;

use anyvar_core::liftover::{ChainFile, Strand};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(chain) = ChainFile::from_reader(Path::new("fuzz.chain"), data) else {
        return;
    };
    // Header lines: `chain score tName tSize tStrand tStart tEnd qName qSize qStrand qStart qEnd id`.
    let text = String::from_utf8_lossy(data);
    for header in text.lines().filter(|l| l.starts_with("chain")) {
        let fields: Vec<&str> = header.split_whitespace().collect();
        let (Some(name), Some(start), Some(end)) = (
            fields.get(2),
            fields.get(5).and_then(|s| s.parse::<u64>().ok()),
            fields.get(6).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        for at in [start, start.saturating_add(1), end.saturating_sub(1), end] {
            let _ = chain.convert_position(name, at);
        }
        let (low, high) = (start.min(end), start.max(end));
        chain
            .convert(name, low, high, Strand::Positive)
            .expect("an ascending interval on the positive strand is accepted");
        chain
            .convert(name, high, low, Strand::Negative)
            .expect("a descending interval on the negative strand is accepted");
    }
});
