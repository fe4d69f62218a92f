//! Opening the input (plain, gzip or BGZF, detected by content) and writing the output (plain or
//! BGZF) through a temporary file that is renamed into place only when the run succeeded.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use noodles_bgzf as bgzf;

use crate::compression::{self, Format};
use crate::error::{Error, Result};

/// Where the VCF comes from.
#[derive(Clone, Debug)]
pub enum Input {
    Path(PathBuf),
    Stdin,
}

/// Where the annotated VCF goes.
#[derive(Clone, Debug)]
pub enum Output {
    Path(PathBuf),
    Stdout,
}

/// Output compression; `Auto` is BGZF for names ending in `.gz`/`.bgz`, plain otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Auto,
    Plain,
    Bgzf,
}

impl std::str::FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Compression::Auto),
            "none" | "plain" => Ok(Compression::Plain),
            "bgzip" | "bgzf" | "gzip" => Ok(Compression::Bgzf),
            other => Err(Error::InvalidArgument(format!(
                "unknown output compression {other:?}; use auto, none or bgzip"
            ))),
        }
    }
}

/// Counts the (compressed) bytes consumed, for progress as a share of the input size.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub(crate) struct OpenedInput {
    pub reader: Box<dyn BufRead + Send>,
    /// A BGZF file without its end-of-file block was cut short at a block boundary, which the
    /// decoder cannot see: the reader reports it when it reaches the end.
    pub truncated_bgzf: bool,
    pub bytes_read: Arc<AtomicU64>,
    pub total_bytes: Option<u64>,
}

/// The empty block every BGZF file ends with (SAM/BAM specification, 4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

pub(crate) fn lacks_bgzf_eof(path: &Path) -> bool {
    let mut tail = [0u8; 28];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    f.seek(SeekFrom::End(-28))
        .and_then(|_| f.read_exact(&mut tail))
        .is_ok()
        && tail != BGZF_EOF
}

pub(crate) fn open_input(input: &Input, threads: usize) -> Result<OpenedInput> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (raw, total_bytes, name): (Box<dyn Read + Send>, Option<u64>, String) = match input {
        Input::Path(p) => {
            let f =
                File::open(p).map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?;
            // Only a regular file has a size worth reporting progress against (not a pipe).
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), len, p.display().to_string())
        }
        Input::Stdin => (Box::new(io::stdin()), None, "standard input".into()),
    };
    let mut raw = BufReader::with_capacity(
        1 << 16,
        Counting {
            inner: raw,
            count: bytes_read.clone(),
        },
    );
    let head = raw
        .fill_buf()
        .map_err(|e| Error::io(format!("cannot read {name}"), e))?;
    let format = compression::detect(head);
    let is_bgzf = format == Format::Bgzf;
    let truncated_bgzf =
        is_bgzf && total_bytes.is_some() && matches!(input, Input::Path(p) if lacks_bgzf_eof(p));
    let reader: Box<dyn BufRead + Send> = match format {
        // BGZF gets the multithreaded block decoder.
        Format::Bgzf => {
            let workers = NonZero::new(threads.max(1)).expect("max(1)");
            Box::new(BufReader::with_capacity(
                1 << 20,
                bgzf::io::MultithreadedReader::with_worker_count(workers, raw),
            ))
        }
        Format::Gzip { .. } => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Format::Plain => Box::new(raw),
    };
    Ok(OpenedInput {
        reader,
        truncated_bgzf,
        bytes_read,
        total_bytes,
    })
}

enum Sink {
    Plain(BufWriter<File>),
    Bgzf(bgzf::io::MultithreadedWriter<File>),
    Stdout(BufWriter<io::Stdout>),
}

/// The output being written; dropped without [`OutputFile::commit`], it removes its temporary file.
pub(crate) struct OutputFile {
    sink: Option<Sink>,
    temp: Option<PathBuf>,
    target: Option<PathBuf>,
}

fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    target.with_file_name(format!(".{name}.{}.{nanos}.partial", std::process::id()))
}

impl OutputFile {
    pub fn create(
        output: &Output,
        compression: Compression,
        threads: usize,
        index: bool,
    ) -> Result<OutputFile> {
        let bgzf = match (compression, output) {
            (Compression::Bgzf, _) => true,
            (Compression::Plain, _) => false,
            (Compression::Auto, Output::Stdout) => false,
            (Compression::Auto, Output::Path(p)) => {
                let name = p.to_string_lossy();
                name.ends_with(".gz") || name.ends_with(".bgz")
            }
        };
        if index && (!bgzf || matches!(output, Output::Stdout)) {
            return Err(Error::InvalidArgument(
                "a tabix index needs BGZF output to a file (an output name ending in .gz)".into(),
            ));
        }
        match output {
            Output::Stdout => {
                if bgzf {
                    return Err(Error::InvalidArgument(
                        "BGZF output to standard output is not supported; name an output file"
                            .into(),
                    ));
                }
                Ok(OutputFile {
                    sink: Some(Sink::Stdout(BufWriter::with_capacity(
                        1 << 20,
                        io::stdout(),
                    ))),
                    temp: None,
                    target: None,
                })
            }
            Output::Path(target) => {
                let temp = temp_name(target);
                let file = File::create(&temp).map_err(|e| {
                    Error::io(format!("cannot create output {}", target.display()), e)
                })?;
                let sink = if bgzf {
                    let workers = NonZero::new(threads.max(1)).expect("max(1)");
                    Sink::Bgzf(bgzf::io::MultithreadedWriter::with_worker_count(
                        workers, file,
                    ))
                } else {
                    Sink::Plain(BufWriter::with_capacity(1 << 20, file))
                };
                Ok(OutputFile {
                    sink: Some(sink),
                    temp: Some(temp),
                    target: Some(target.clone()),
                })
            }
        }
    }

    /// Appends all of `file`. Plain output is copied file to file, which Linux does in the
    /// kernel (`copy_file_range`) without passing the bytes through this process.
    pub fn copy_from(&mut self, file: &mut File) -> Result<()> {
        let r = match self.sink.as_mut().expect("not committed") {
            Sink::Plain(w) => w.flush().and_then(|_| io::copy(file, w.get_mut())),
            Sink::Bgzf(w) => io::copy(file, w),
            Sink::Stdout(w) => io::copy(file, w),
        };
        r.map(|_| ())
            .map_err(|e| Error::io("writing the output", e))
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let r = match self.sink.as_mut().expect("not committed") {
            Sink::Plain(w) => w.write_all(data),
            Sink::Bgzf(w) => w.write_all(data),
            Sink::Stdout(w) => w.write_all(data),
        };
        r.map_err(|e| Error::io("writing the output", e))
    }

    /// Flushes, closes and moves the output into place; with `index`, writes a tabix index
    /// too. Nothing is moved into place unless every step succeeded.
    pub fn commit(mut self, index: bool) -> Result<()> {
        let werr = |e| Error::io("writing the output", e);
        match self.sink.take().expect("committed once") {
            Sink::Plain(w) => {
                let f = w.into_inner().map_err(|e| werr(e.into_error()))?;
                f.sync_all().map_err(werr)?;
            }
            Sink::Bgzf(mut w) => {
                let f = w.finish().map_err(werr)?;
                f.sync_all().map_err(werr)?;
            }
            Sink::Stdout(mut w) => w.flush().map_err(werr)?,
        }
        if let (Some(temp), Some(target)) = (self.temp.as_ref(), self.target.as_ref()) {
            if index {
                write_index(temp, target)?;
            }
            fs::rename(temp, target).map_err(|e| {
                Error::io(
                    format!("cannot move the output into {}", target.display()),
                    e,
                )
            })?;
            self.temp = None;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            drop(self.sink.take());
            let _ = fs::remove_file(temp);
        }
    }
}

/// Indexes the finished `temp` file and writes the index beside `target` (under a temporary
/// name first, so a failed index leaves nothing behind).
fn write_index(temp: &Path, target: &Path) -> Result<()> {
    let index = noodles_vcf::fs::index(temp)
        .map_err(|e| Error::io(format!("cannot index {}", target.display()), e))?;
    // Contigs longer than 2^29 need a CSI index; noodles picks the format, we pick the suffix.
    let suffix = match index {
        noodles_vcf::Index::Tabix(_) => ".tbi",
        noodles_vcf::Index::Csi(_) => ".csi",
    };
    let final_path = with_suffix_path(target, suffix);
    let temp_path = with_suffix_path(temp, suffix);
    match &index {
        noodles_vcf::Index::Tabix(tbi) => noodles_tabix::fs::write(&temp_path, tbi),
        noodles_vcf::Index::Csi(csi) => noodles_csi::fs::write(&temp_path, csi),
    }
    .and_then(|()| fs::rename(&temp_path, &final_path))
    .map_err(|e| {
        let _ = fs::remove_file(&temp_path);
        Error::io(
            format!("cannot write the {suffix} index of {}", target.display()),
            e,
        )
    })
}

fn with_suffix_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
