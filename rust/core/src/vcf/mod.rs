//! VCF annotation with VRS identifiers: a streaming, parallel pipeline.
//!
//! A reader thread cuts the input into chunks of whole lines; chunks are annotated on a rayon pool
//! sized by `threads`; the calling thread writes results in input order, hands computed alleles to
//! the sink, and reports progress. At most a few chunks are in flight, so memory stays flat
//! whatever the input size.

mod check;
mod ingest;
mod io;
mod limits;
mod range;
mod record;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, unbounded, Receiver};

pub use self::check::{check_vcf, Checked};
pub use self::ingest::{ingest_annotated_vcf, IngestSummary, CONFLICTS_HEADER};
use self::io::{open_input, OutputFile};
pub use self::io::{Compression, Input, Output};
pub use self::limits::{Limits, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_LINE_BYTES};
pub use self::range::{join_parts, Range};
pub use self::record::VRS_KEYS;
use self::record::{escape_error, invalid, write_info_without_vrs, write_vrs_info, Columns};
use crate::alleles::{AlleleSink, Annotator, Outcome, RecordOptions};
use crate::error::{Error, Result};
use crate::sequence::SequenceSource;
use crate::vrs::model::Allele;

/// The VRS model version written into the header.
pub const VRS_VERSION: &str = "2.0.1";
/// Bytes of input per chunk of work.
const CHUNK_BYTES: usize = 512 * 1024;
/// How often progress is reported (and cancellation checked).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub struct AnnotateOptions {
    pub record: RecordOptions,
    /// Worker threads for annotation and for BGZF (de)compression.
    pub threads: usize,
    pub compression: Compression,
    /// Write a tabix index beside BGZF output.
    pub tabix: bool,
    /// Implementation and version named in the header bracket (`AnyVar version=…`).
    pub producer: String,
    /// Annotate only these lines of the input (one chunk of a run spread over workers).
    pub range: Option<Range>,
    /// How a missing String entry (`VRS_Allele_IDs`, `VRS_States`) is written.
    pub missing_string: MissingString,
    /// Bounds on a line and on the header.
    pub limits: Limits,
}

/// vrs-python 2.3 writes a missing String INFO entry as `.` (as the VCF specification says);
/// 2.2 wrote an empty string (`VRS_States=,AT`). Users comparing with files of either keep
/// their diffs empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingString {
    #[default]
    Dot,
    Empty,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub records: u64,
    pub bytes_read: u64,
    pub total_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Data lines read.
    pub records: u64,
    /// Alleles computed (REF and ALT; duplicates counted).
    pub alleles: u64,
    /// Records that got a `VRS_Error`.
    pub errors: u64,
    pub seconds: f64,
}

/// The header lines the annotator adds (spec 3.6), with `N`/`D` chosen by `for_ref`.
pub fn vrs_header_lines(options: &AnnotateOptions) -> String {
    let (n, d) = if options.record.for_ref {
        ("R", "REF and ALT")
    } else {
        ("A", "ALT")
    };
    let mut s = format!(
        "##INFO=<ID=VRS_Allele_IDs,Number={n},Type=String,Description=\"The computed identifiers for the GA4GH VRS Alleles corresponding to the GT indexes of the {d} alleles [VRS version={VRS_VERSION};{}]\">\n\
         ##INFO=<ID=VRS_Error,Number=.,Type=String,Description=\"If an error occurred computing a VRS Identifier, the error message\">\n",
        options.producer
    );
    if options.record.vrs_attributes {
        for (id, ty, what) in [
            (
                "VRS_Starts",
                "Integer",
                "Interresidue coordinates used as the location starts",
            ),
            (
                "VRS_Ends",
                "Integer",
                "Interresidue coordinates used as the location ends",
            ),
            ("VRS_States", "String", "The literal sequence states used"),
            (
                "VRS_Lengths",
                "Integer",
                "The length values from ReferenceLengthExpression states",
            ),
            (
                "VRS_RepeatSubunitLengths",
                "Integer",
                "The repeatSubunitLength values from ReferenceLengthExpression states",
            ),
        ] {
            s.push_str(&format!(
                "##INFO=<ID={id},Number={n},Type={ty},Description=\"{what} for the GA4GH VRS Alleles corresponding to the GT indexes of the {d} alleles\">\n"
            ));
        }
    }
    s
}

fn is_old_vrs_header(line: &[u8]) -> bool {
    VRS_KEYS.iter().any(|k| {
        line.strip_prefix(b"##INFO=<ID=")
            .and_then(|rest| rest.strip_prefix(k.as_bytes()))
            .is_some_and(|rest| rest.first() == Some(&b','))
    })
}

/// Reads one line into `buf`; a line longer than `ANYVAR_MAX_LINE_BYTES` is bad input, found
/// before more of it than that is held.
fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    line_no: u64,
    limits: &Limits,
) -> Result<usize> {
    limits::read_line_bounded(reader, buf, limits.max_line_bytes)
        .map_err(|e| read_error(line_no, e))?
        .ok_or_else(|| line_too_long(line_no, limits))
}

fn line_too_long(line_no: u64, limits: &Limits) -> Error {
    invalid(
        line_no,
        format!(
            "the line is longer than {} bytes (ANYVAR_MAX_LINE_BYTES)",
            limits.max_line_bytes
        ),
    )
}

fn read_error(line: u64, e: std::io::Error) -> Error {
    let message = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the compressed input is truncated".to_string(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            format!("the compressed input is corrupt ({e})")
        }
        _ => return Error::io(format!("reading the input at line {line}"), e),
    };
    invalid(line, message)
}

/// Reads and checks a VCF header: `meta` sees each `##` line; returns the `#CHROM` line and the
/// number of lines read.
pub(crate) fn read_header_lines(
    reader: &mut dyn BufRead,
    limits: &Limits,
    mut meta: impl FnMut(&[u8]),
) -> Result<(Vec<u8>, u64)> {
    let not_vcf = || invalid(1, "not a VCF: the first line must be ##fileformat=VCFv4.x");
    let head = reader.fill_buf().map_err(|e| read_error(1, e))?;
    if head.is_empty() {
        return Err(invalid(
            1,
            "the input is empty; a VCF starts with a ##fileformat=VCFv4.x line",
        ));
    }
    if head.starts_with(b"\xEF\xBB\xBF") {
        // Editors on Windows add one; htslib and vrs-python refuse such a file too.
        return Err(invalid(
            1,
            "not a VCF: it starts with a UTF-8 byte order mark (bytes EF BB BF) before \
             ##fileformat; save it without the BOM",
        ));
    }
    // Checked before reading a whole "line": binary input may have no newline for gigabytes.
    if !b"##fileformat=VCF".starts_with(&head[..head.len().min(16)])
        && !head.starts_with(b"##fileformat=VCF")
    {
        return Err(not_vcf());
    }
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut header_bytes = 0u64;
    loop {
        line.clear();
        line_no += 1;
        if read_line(reader, &mut line, line_no, limits)? == 0 {
            return Err(invalid(line_no, "the header has no #CHROM line"));
        }
        header_bytes += line.len() as u64;
        if header_bytes > limits.max_header_bytes {
            return Err(invalid(
                line_no,
                format!(
                    "the header is longer than {} bytes (ANYVAR_MAX_HEADER_BYTES)",
                    limits.max_header_bytes
                ),
            ));
        }
        if line_no == 1 && !line.starts_with(b"##fileformat=VCF") {
            return Err(not_vcf());
        }
        if line.starts_with(b"#CHROM") {
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            return Ok((line, line_no));
        }
        if !line.starts_with(b"##") {
            return Err(invalid(
                line_no,
                "expected a ## header line or the #CHROM line before the data",
            ));
        }
        meta(&line);
    }
}

/// The header rewritten: old VRS INFO lines dropped, ours added before `#CHROM`.
fn read_header(reader: &mut dyn BufRead, options: &AnnotateOptions) -> Result<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let (chrom_line, lines) = read_header_lines(reader, &options.limits, |line| {
        if !is_old_vrs_header(line) {
            out.extend_from_slice(line);
        }
    })?;
    let ours = vrs_header_lines(options);
    if chrom_line.ends_with(b"\r\n") {
        // Keep a CRLF file's line endings consistent in the lines we add.
        out.extend_from_slice(ours.replace('\n', "\r\n").as_bytes());
    } else {
        out.extend_from_slice(ours.as_bytes());
    }
    out.extend_from_slice(&chrom_line);
    Ok((out, lines))
}

struct Chunk {
    seq: u64,
    first_line: u64,
    data: Vec<u8>,
}

struct ChunkResult {
    text: Vec<u8>,
    alleles: Vec<Allele>,
    records: u64,
    computed: u64,
    errors: u64,
}

/// A BGZF input without its end-of-file block, found at its end (`line`: the one after it).
fn truncated_bgzf(line: u64) -> Error {
    invalid(
        line,
        "the bgzip input is truncated (it lacks the BGZF end-of-file block)",
    )
}

/// Reader thread: whole lines, about `CHUNK_BYTES` at a time, up to line `last_line` (a range
/// of the input) or its end.
fn read_chunks(
    mut reader: Box<dyn BufRead + Send>,
    truncated_bgzf: bool,
    mut line_no: u64,
    last_line: Option<u64>,
    limits: Limits,
    tx: crossbeam_channel::Sender<Result<Chunk>>,
) {
    let mut seq = 0;
    loop {
        let mut data = Vec::with_capacity(CHUNK_BYTES + 4096);
        let first_line = line_no + 1;
        while data.len() < CHUNK_BYTES {
            if last_line.is_some_and(|last| line_no >= last) {
                break;
            }
            match read_line(&mut *reader, &mut data, line_no + 1, &limits) {
                Ok(0) => break,
                Ok(_) => line_no += 1,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        let last = data.len() < CHUNK_BYTES;
        if last && truncated_bgzf {
            let _ = tx.send(Err(self::truncated_bgzf(line_no + 1)));
            return;
        }
        if data.is_empty() {
            return;
        }
        if tx
            .send(Ok(Chunk {
                seq,
                first_line,
                data,
            }))
            .is_err()
            || last
        {
            return;
        }
        seq += 1;
    }
}

/// The columns of a data line (without its line ending), None for a blank line; the error of a
/// line that cannot be a record. The annotator and [`check_vcf`] share it, so that a check
/// before a run refuses exactly what the run would.
fn record_columns(line: &[u8], line_no: u64) -> Result<Option<Columns>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if line.starts_with(b"#") {
        return Err(invalid(line_no, "a header line after the #CHROM line"));
    }
    let cols = Columns::split(line).map_err(|found| {
        invalid(
            line_no,
            format!("expected at least 8 tab-separated columns (CHROM POS ID REF ALT QUAL FILTER INFO), found {found}"),
        )
    })?;
    let pos = cols.get(line, 1);
    if pos.is_empty() || !pos.iter().all(u8::is_ascii_digit) {
        return Err(invalid(
            line_no,
            format!("POS {:?} is not a number", String::from_utf8_lossy(pos)),
        ));
    }
    Ok(Some(cols))
}

/// Records between two looks at the stop flag: a stopped run must not finish whole chunks of
/// expensive records (a long repeat can cost milliseconds a record).
const STOP_CHECK_EVERY: u64 = 64;

fn annotate_chunk(
    annotator: &mut Annotator,
    chunk: &Chunk,
    options: &AnnotateOptions,
    collect: bool,
    stop: &AtomicBool,
) -> Result<ChunkResult> {
    let mut out = ChunkResult {
        text: Vec::with_capacity(chunk.data.len() * 2 + 1024),
        alleles: Vec::new(),
        records: 0,
        computed: 0,
        errors: 0,
    };
    for (this_line, raw) in (chunk.first_line..).zip(chunk.data.split_inclusive(|b| *b == b'\n')) {
        let (line, ending): (&[u8], &[u8]) = match raw {
            [l @ .., b'\r', b'\n'] => (l, b"\r\n"),
            [l @ .., b'\n'] => (l, b"\n"),
            l => (l, b"\n"),
        };
        let Some(cols) = record_columns(line, this_line)? else {
            continue;
        };
        if out.records.is_multiple_of(STOP_CHECK_EVERY) && stop.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let pos = cols.get(line, 1);
        out.records += 1;
        let outcome =
            annotator.annotate(cols.get(line, 0), pos, cols.get(line, 3), cols.get(line, 4))?;
        let (info_start, info_end) = cols.bounds[7];
        out.text.extend_from_slice(&line[..info_start]);
        let had_info = write_info_without_vrs(&line[info_start..info_end], &mut out.text);
        match outcome {
            Outcome::Error(message) => {
                out.errors += 1;
                if had_info {
                    out.text.push(b';');
                }
                out.text.extend_from_slice(b"VRS_Error=");
                escape_error(&message, &mut out.text);
            }
            Outcome::Alleles => {
                let entries = annotator.entries();
                if entries.is_empty() {
                    // ALT `.` without REF: nothing to add (vrs-python writes `-127`, spec 6.3).
                    if !had_info {
                        out.text.push(b'.');
                    }
                } else {
                    if had_info {
                        out.text.push(b';');
                    }
                    write_vrs_info(
                        entries,
                        options.record.vrs_attributes,
                        options.missing_string,
                        &mut out.text,
                    );
                }
                out.computed += entries.iter().flatten().count() as u64;
                if collect {
                    out.alleles.extend(annotator.take_entries());
                }
            }
        }
        out.text.extend_from_slice(&line[info_end..]);
        out.text.extend_from_slice(ending);
    }
    Ok(out)
}

/// A whole VCF held in memory, annotated as [`annotate_vcf`] annotates it (the header rewritten,
/// then every data line in one chunk): the annotated VCF and the alleles a sink would get.
/// Only for the fuzz targets (`fuzz/`), which need the header and record code without the
/// files, threads and temporary output around it.
#[doc(hidden)]
pub fn annotate_in_memory(
    annotator: &mut Annotator,
    vcf: &[u8],
    options: &AnnotateOptions,
) -> Result<(Vec<u8>, Vec<Allele>)> {
    let mut reader = vcf;
    let (mut out, header_lines) = read_header(&mut reader, options)?;
    let chunk = Chunk {
        seq: 0,
        first_line: header_lines + 1,
        data: reader.to_vec(),
    };
    let done = annotate_chunk(annotator, &chunk, options, true, &AtomicBool::new(false))?;
    out.extend_from_slice(&done.text);
    Ok((out, done.alleles))
}

/// Annotates `input` into `output`. `progress` is called from this thread at most every 200 ms
/// and once at the end; returning an error cancels the run. On any error the output file is not
/// left behind.
pub fn annotate_vcf(
    source: &SequenceSource,
    input: &Input,
    output: &Output,
    options: &AnnotateOptions,
    mut sink: Option<&mut dyn AlleleSink>,
    progress: &mut dyn FnMut(&Progress) -> Result<()>,
) -> Result<Summary> {
    let started = Instant::now();
    let threads = options.threads.max(1);
    let opened = open_input(input, threads)?;
    let bytes_read = opened.bytes_read.clone();
    let truncated_bgzf = opened.truncated_bgzf;
    let mut reader = opened.reader;
    let (header, header_lines) = read_header(&mut *reader, options)?;
    let (reader, first_line, truncated_bgzf) = match (&options.range, input) {
        (None, _) => (reader, header_lines, truncated_bgzf),
        (Some(range), Input::Path(path)) => (
            self::range::open_range(path, range, threads)?,
            range.first_line - 1,
            truncated_bgzf && range.lines.is_none(),
        ),
        (Some(_), Input::Stdin) => {
            return Err(Error::InvalidArgument(
                "a range of standard input cannot be read".into(),
            ))
        }
    };
    let last_line =
        (options.range.as_ref()).and_then(|r| r.lines.map(|lines| r.first_line - 1 + lines));
    let mut out = OutputFile::create(output, options.compression, threads, options.tabix)?;
    if options.range.as_ref().is_none_or(|r| r.header) {
        out.write_all(&header)?;
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("anyvar-annotate-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    let annotators: Mutex<Vec<Annotator>> = Mutex::new(Vec::new());
    let collect = sink.is_some();
    let max_in_flight = threads * 2 + 1;
    let mut summary = Summary::default();
    let report = |records: u64| Progress {
        records,
        bytes_read: bytes_read.load(Ordering::Relaxed),
        total_bytes: opened.total_bytes,
    };

    let (chunk_tx, chunk_rx) = bounded::<Result<Chunk>>(max_in_flight);
    let limits = options.limits;
    // Not a scoped thread: if the run stops early, a reader blocked on a slow input (a pipe) must
    // not hold the caller; it ends by itself at its next send.
    let reader_thread = std::thread::Builder::new()
        .name("anyvar-read".into())
        .spawn(move || {
            read_chunks(
                reader,
                truncated_bgzf,
                first_line,
                last_line,
                limits,
                chunk_tx,
            )
        })
        .map_err(|e| Error::io("cannot start the reader thread", e))?;

    // Set when the run stops early, so chunks already on the pool stop too.
    let stop = AtomicBool::new(false);
    let result = pool.in_place_scope(|scope| -> Result<()> {
        let (result_tx, result_rx) = unbounded::<(u64, Result<ChunkResult>)>();
        let mut in_flight = 0usize;
        let mut reader_done = false;
        let mut next = 0u64;
        let mut pending: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut last_report = Instant::now();
        let none: Receiver<Result<Chunk>> = never();
        let stopped = |e: Error| {
            stop.store(true, Ordering::Relaxed);
            e
        };
        loop {
            if reader_done && in_flight == 0 {
                return Ok(());
            }
            let chunks = if !reader_done && in_flight < max_in_flight {
                &chunk_rx
            } else {
                &none
            };
            select! {
                recv(chunks) -> msg => match msg {
                    Ok(Ok(chunk)) => {
                        in_flight += 1;
                        let tx = result_tx.clone();
                        let annotators = &annotators;
                        let stop = &stop;
                        scope.spawn(move |_| {
                            let mut annotator = annotators.lock().expect("annotators").pop()
                                .unwrap_or_else(|| Annotator::new(source, &options.record));
                            let r = annotate_chunk(&mut annotator, &chunk, options, collect, stop);
                            annotators.lock().expect("annotators").push(annotator);
                            let _ = tx.send((chunk.seq, r));
                        });
                    }
                    Ok(Err(e)) => return Err(stopped(e)),
                    Err(_) => reader_done = true,
                },
                recv(result_rx) -> msg => {
                    let (seq, r) = msg.expect("we hold a sender");
                    in_flight -= 1;
                    pending.insert(seq, r.map_err(stopped)?);
                    while let Some(mut done) = pending.remove(&next) {
                        out.write_all(&done.text).map_err(stopped)?;
                        if let Some(sink) = sink.as_mut() {
                            if !done.alleles.is_empty() {
                                sink.put(std::mem::take(&mut done.alleles))
                                    .map_err(|e| stopped(Error::Sink(e)))?;
                            }
                        }
                        summary.records += done.records;
                        summary.alleles += done.computed;
                        summary.errors += done.errors;
                        next += 1;
                    }
                },
                default(PROGRESS_EVERY) => {},
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                progress(&report(summary.records)).map_err(stopped)?;
            }
        }
    });
    drop(chunk_rx);
    result?;
    let _ = reader_thread.join();
    // The last report comes before the commit: cancelling there must not leave an output.
    progress(&report(summary.records))?;
    out.commit(options.tabix)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
