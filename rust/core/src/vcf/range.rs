//! One VCF across many workers: a run is cut into ranges of whole lines (found while the
//! upload is checked), each range is annotated on its own, and the parts are joined in input
//! order into exactly the output one run would have written.
//!
//! A range starts at a position that can be sought to without reading what comes before: a
//! byte offset in a plain VCF, a BGZF virtual position (block offset and offset within the
//! block) in a bgzip one, so no chunk is ever copied or recompressed. Gzip that is not BGZF
//! cannot be sought in and is never cut.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::num::NonZero;
use std::path::{Path, PathBuf};

use noodles_bgzf as bgzf;
use noodles_bgzf::io::Seek as _;

use super::io::{Compression, Output, OutputFile};
use crate::compression::{self, Format};
use crate::error::{Error, Result};

/// Lines `first_line..first_line + lines` of a file (`lines: None`: to its end), starting at
/// `offset` (see [`Seekable::position`]). `header`: the part also carries the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub offset: u64,
    pub first_line: u64,
    pub lines: Option<u64>,
    pub header: bool,
}

/// A plain or BGZF file read line by line that can tell where it is and go back there.
pub(crate) enum Seekable {
    Plain {
        reader: BufReader<File>,
        position: u64,
    },
    Bgzf(bgzf::io::MultithreadedReader<File>),
}

impl Seekable {
    /// Opens `path` for ranges; None when it is gzip but not BGZF (it cannot be sought in).
    pub fn open(path: &Path, threads: usize) -> Result<Option<Seekable>> {
        let open_err = |e| Error::io(format!("cannot open {}", path.display()), e);
        let mut file = File::open(path).map_err(open_err)?;
        let mut head = [0u8; compression::HEAD_BYTES];
        let n = compression::read_up_to(&mut file, &mut head).map_err(open_err)?;
        file.seek(SeekFrom::Start(0)).map_err(open_err)?;
        match compression::detect(&head[..n]) {
            Format::Plain => Ok(Some(Seekable::Plain {
                reader: BufReader::with_capacity(1 << 20, file),
                position: 0,
            })),
            Format::Gzip { .. } => Ok(None),
            Format::Bgzf => {
                let workers = NonZero::new(threads.max(1)).expect("max(1)");
                Ok(Some(Seekable::Bgzf(
                    bgzf::io::MultithreadedReader::with_worker_count(workers, file),
                )))
            }
        }
    }

    /// Where the next byte comes from: a byte offset, or a BGZF virtual position.
    pub fn position(&self) -> u64 {
        match self {
            Seekable::Plain { position, .. } => *position,
            Seekable::Bgzf(r) => u64::from(r.virtual_position()),
        }
    }

    pub fn seek(&mut self, offset: u64) -> io::Result<()> {
        match self {
            Seekable::Plain { reader, position } => {
                reader.seek(SeekFrom::Start(offset))?;
                *position = offset;
            }
            Seekable::Bgzf(r) => {
                r.seek_to_virtual_position(bgzf::VirtualPosition::from(offset))?;
            }
        }
        Ok(())
    }
}

impl Read for Seekable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Seekable {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Seekable::Plain { reader, .. } => reader.fill_buf(),
            Seekable::Bgzf(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            Seekable::Plain { reader, position } => {
                reader.consume(amt);
                *position += amt as u64;
            }
            Seekable::Bgzf(r) => r.consume(amt),
        }
    }
}

/// `path` from the start of `range` on (the annotator stops reading at its last line).
pub(crate) fn open_range(
    path: &Path,
    range: &Range,
    threads: usize,
) -> Result<Box<dyn BufRead + Send>> {
    let mut reader = Seekable::open(path, threads)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{} is gzip but not BGZF: it cannot be read in ranges",
            path.display()
        ))
    })?;
    reader
        .seek(range.offset)
        .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
    Ok(Box::new(reader))
}

/// Joins the parts written for the ranges of a run, in order, into `output`: the bytes a
/// single run writes (BGZF output is compressed here, from the joined stream, so its blocks
/// and its index are those of one run). The parts are plain VCF.
pub fn join_parts(
    parts: &[PathBuf],
    output: &Path,
    compression: Compression,
    tabix: bool,
    threads: usize,
) -> Result<()> {
    let mut out = OutputFile::create(
        &Output::Path(output.to_path_buf()),
        compression,
        threads,
        tabix,
    )?;
    for part in parts {
        let mut f = File::open(part)
            .map_err(|e| Error::io(format!("cannot open the part {}", part.display()), e))?;
        out.copy_from(&mut f)?;
    }
    out.commit(tabix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alleles::RecordOptions;
    use crate::sequence::SequenceSource;
    use crate::vcf::{annotate_vcf, check_vcf, AnnotateOptions, Input, Limits, MissingString};
    use std::io::Write;

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors")
    }

    /// The vectors' VCF with its records repeated: many BGZF blocks, blank lines included.
    fn long_input(dir: &Path, bgzf: bool) -> PathBuf {
        let text = std::fs::read_to_string(vectors().join("input.vcf")).unwrap();
        let (header, body): (Vec<&str>, Vec<&str>) =
            text.split_inclusive('\n').partition(|l| l.starts_with('#'));
        let mut all = header.concat();
        for i in 0..80 {
            all.push_str(&body.concat());
            if i % 40 == 0 {
                all.push('\n');
            }
        }
        let path = dir.join(if bgzf { "in.vcf.gz" } else { "in.vcf" });
        let file = File::create(&path).unwrap();
        if bgzf {
            let mut w = bgzf::io::Writer::new(file);
            w.write_all(all.as_bytes()).unwrap();
            w.finish().unwrap();
        } else {
            let mut file = file;
            file.write_all(all.as_bytes()).unwrap();
        }
        path
    }

    fn annotate(source: &SequenceSource, input: &Path, output: &Path, o: &AnnotateOptions) {
        let input = Input::Path(input.to_path_buf());
        let output = Output::Path(output.to_path_buf());
        annotate_vcf(source, &input, &output, o, None, &mut |_| Ok(())).unwrap();
    }

    /// Parts of ranges, joined, are the bytes of one run: plain and BGZF in and out, with and
    /// without attributes, ranges cut inside BGZF blocks.
    #[test]
    fn joined_ranges_equal_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!(
            "seqrepo+file://{}",
            vectors().join("seqrepo/2024-01-01").display()
        );
        let source = SequenceSource::open(&uri, None).unwrap();
        for bgzf_in in [false, true] {
            let input = long_input(dir.path(), bgzf_in);
            let checked = check_vcf(
                &Input::Path(input.clone()),
                2,
                false,
                997,
                &Limits::default(),
            )
            .unwrap();
            assert_eq!(checked.ranges.len() as u64, checked.records.div_ceil(997));
            assert!(checked.ranges[0].header && !checked.ranges[1].header);
            for (compression, attrs) in [
                (Compression::Plain, false),
                (Compression::Bgzf, false),
                (Compression::Bgzf, true),
            ] {
                let mut options = AnnotateOptions {
                    record: RecordOptions {
                        assembly: "GRCh38".into(),
                        for_ref: true,
                        vrs_attributes: attrs,
                        require_validation: true,
                    },
                    threads: 2,
                    compression,
                    tabix: false,
                    producer: "AnyVar version=test".into(),
                    range: None,
                    missing_string: MissingString::Dot,
                    limits: Limits::default(),
                };
                let whole = dir.path().join("whole");
                annotate(&source, &input, &whole, &options);
                options.compression = Compression::Plain;
                let parts: Vec<PathBuf> = (checked.ranges.iter().enumerate())
                    .map(|(i, range)| {
                        let part = dir.path().join(format!("part{i}"));
                        options.range = Some(range.clone());
                        annotate(&source, &input, &part, &options);
                        part
                    })
                    .collect();
                let joined = dir.path().join("joined");
                join_parts(&parts, &joined, compression, false, 2).unwrap();
                let (a, b) = (
                    std::fs::read(&whole).unwrap(),
                    std::fs::read(&joined).unwrap(),
                );
                assert!(a == b, "bgzf in {bgzf_in}, {compression:?}, attrs {attrs}");
            }
        }
    }
}
