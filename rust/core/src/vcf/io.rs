//! Opening the input (plain, gzip or BGZF, detected by content) and writing the output (plain or
//! BGZF) through a temporary file that is renamed into place only when the run succeeded.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use noodles_bgzf as bgzf;

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
    pub bytes_read: Arc<AtomicU64>,
    pub total_bytes: Option<u64>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub(crate) fn open_input(input: &Input, threads: usize) -> Result<OpenedInput> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (raw, total_bytes, name): (Box<dyn Read + Send>, Option<u64>, String) = match input {
        Input::Path(p) => {
            let f =
                File::open(p).map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?;
            let len = f.metadata().ok().map(|m| m.len());
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
    let reader: Box<dyn BufRead + Send> = if head.starts_with(&GZIP_MAGIC) {
        // BGZF is gzip with a `BC` extra subfield; it gets the multithreaded block decoder.
        let is_bgzf =
            head.len() >= 14 && head[3] & 0x04 != 0 && head[12] == b'B' && head[13] == b'C';
        if is_bgzf {
            let workers = NonZero::new(threads.max(1)).expect("max(1)");
            Box::new(BufReader::with_capacity(
                1 << 20,
                bgzf::io::MultithreadedReader::with_worker_count(workers, raw),
            ))
        } else {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        }
    } else {
        Box::new(raw)
    };
    Ok(OpenedInput {
        reader,
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
    bgzf: bool,
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
    pub fn create(output: &Output, compression: Compression, threads: usize) -> Result<OutputFile> {
        let bgzf = match (compression, output) {
            (Compression::Bgzf, _) => true,
            (Compression::Plain, _) => false,
            (Compression::Auto, Output::Stdout) => false,
            (Compression::Auto, Output::Path(p)) => {
                let name = p.to_string_lossy();
                name.ends_with(".gz") || name.ends_with(".bgz")
            }
        };
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
                    bgzf,
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
                    bgzf,
                })
            }
        }
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let r = match self.sink.as_mut().expect("not committed") {
            Sink::Plain(w) => w.write_all(data),
            Sink::Bgzf(w) => w.write_all(data),
            Sink::Stdout(w) => w.write_all(data),
        };
        r.map_err(|e| Error::io("writing the output", e))
    }

    /// Flushes, closes and moves the output into place; with `index`, writes a tabix index too.
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
        if let (Some(temp), Some(target)) = (self.temp.take(), self.target.as_ref()) {
            fs::rename(&temp, target).map_err(|e| {
                let _ = fs::remove_file(&temp);
                Error::io(
                    format!("cannot move the output into {}", target.display()),
                    e,
                )
            })?;
            if index {
                if !self.bgzf {
                    return Err(Error::InvalidArgument(
                        "a tabix index needs BGZF output (an output name ending in .gz)".into(),
                    ));
                }
                write_tabix(target)?;
            }
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

fn write_tabix(path: &Path) -> Result<()> {
    let index = noodles_vcf::fs::index(path)
        .map_err(|e| Error::io(format!("cannot index {}", path.display()), e))?;
    // Contigs longer than 2^29 need a CSI index; noodles picks the format, we pick the suffix.
    let (suffix, written) = match &index {
        noodles_vcf::Index::Tabix(tbi) => (
            ".tbi",
            with_suffix_path(path, ".tbi", |p| noodles_tabix::fs::write(p, tbi)),
        ),
        noodles_vcf::Index::Csi(csi) => (
            ".csi",
            with_suffix_path(path, ".csi", |p| noodles_csi::fs::write(p, csi)),
        ),
    };
    written.map_err(|e| {
        Error::io(
            format!("cannot write the {suffix} index of {}", path.display()),
            e,
        )
    })
}

fn with_suffix_path(
    path: &Path,
    suffix: &str,
    write: impl FnOnce(PathBuf) -> io::Result<()>,
) -> io::Result<()> {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    write(PathBuf::from(s))
}
