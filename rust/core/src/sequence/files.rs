//! Windowed reading of indexed FASTA files (plain with `.fai`, or BGZF with `.fai` + `.gzi`),
//! the storage format of both SeqRepo and FASTA sources.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use noodles_bgzf as bgzf;
use noodles_core::Position;
use noodles_fasta::fai;

use super::{Contig, Store};
use crate::compression::{self, Format};
use crate::error::{Error, Result};
use crate::vrs::normalize::Reference;

/// Residues per cached block: about one BGZF block, so a miss decompresses one or two blocks (and
/// one request to a SeqRepo REST service, whose blocks are the same).
pub(super) const BLOCK: u64 = 64 * 1024;
/// Blocks each worker keeps (4 MiB): enough for sorted input to hit almost always.
const CACHED_BLOCKS: usize = 64;

/// An indexed sequence file, shared (read-only) by all workers.
#[derive(Debug)]
pub struct SequenceFile {
    pub path: PathBuf,
    records: HashMap<String, fai::Record>,
    gzi: Option<bgzf::gzi::Index>,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether a FASTA file is read as BGZF: any gzip with an extra field, as it always was here
/// (VCF input also wants the `BC` subfield), so a gzip file with another extra field fails in
/// the BGZF reader instead of being read as plain text.
pub(crate) fn is_bgzf(path: &Path) -> io::Result<bool> {
    Ok(matches!(
        compression::detect_file(path)?,
        Format::Bgzf | Format::Gzip { extra: true }
    ))
}

impl SequenceFile {
    /// Opens `path` with its `.fai` (and `.gzi` when BGZF-compressed).
    pub fn open(uri: &str, path: &Path) -> Result<SequenceFile> {
        let bad = |what: String| Error::source(uri, what);
        let bgzf =
            is_bgzf(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let fai_path = with_suffix(path, ".fai");
        let index = fai::fs::read(&fai_path).map_err(|e| {
            bad(format!(
                "cannot read the FASTA index {}: {e} (create it with `samtools faidx`)",
                fai_path.display()
            ))
        })?;
        let gzi = if bgzf {
            let gzi_path = with_suffix(path, ".gzi");
            Some(bgzf::gzi::fs::read(&gzi_path).map_err(|e| {
                bad(format!(
                    "cannot read the BGZF index {}: {e} (create it with `samtools faidx`)",
                    gzi_path.display()
                ))
            })?)
        } else {
            None
        };
        let records = index
            .as_ref()
            .iter()
            .map(|r| (r.name().to_string(), r.clone()))
            .collect();
        Ok(SequenceFile {
            path: path.to_path_buf(),
            records,
            gzi,
        })
    }

    pub fn record(&self, name: &str) -> Option<&fai::Record> {
        self.records.get(name)
    }

    pub fn records(&self) -> impl Iterator<Item = &fai::Record> {
        self.records.values()
    }

    fn open_handle(&self) -> io::Result<Handle> {
        let file = File::open(&self.path)?;
        Ok(match &self.gzi {
            Some(index) => {
                Handle::Bgzf(Box::new(bgzf::io::IndexedReader::new(file, index.clone())))
            }
            None => Handle::Plain(file),
        })
    }
}

enum Handle {
    Plain(File),
    Bgzf(Box<bgzf::io::IndexedReader<File>>),
}

impl Handle {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Handle::Plain(f) => {
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(buf)
            }
            Handle::Bgzf(r) => {
                r.seek(SeekFrom::Start(offset))?;
                r.read_exact(buf)
            }
        }
    }
}

/// One worker's access to sequences: open file handles and a FIFO cache of blocks.
#[derive(Default)]
pub struct SequenceReader {
    handles: HashMap<PathBuf, Handle>,
    blocks: HashMap<(u32, u64), Arc<[u8]>>,
    order: VecDeque<(u32, u64)>,
    raw: Vec<u8>,
}

impl SequenceReader {
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&mut self, contig: &Contig, index: u64) -> Result<Arc<[u8]>> {
        if let Some(b) = self.blocks.get(&(contig.id, index)) {
            return Ok(b.clone());
        }
        let data: Arc<[u8]> = match &contig.store {
            Store::File(file) => self.load(contig, file, index)?.into(),
            Store::Http(service) => match service.upgrade() {
                Some(service) => service.block(contig, index)?,
                None => {
                    return Err(Error::SequenceRead {
                        name: contig.name.clone(),
                        path: PathBuf::new(),
                        source: io::Error::other("its sequence source was closed"),
                    })
                }
            },
        };
        if self.order.len() >= CACHED_BLOCKS {
            if let Some(old) = self.order.pop_front() {
                self.blocks.remove(&old);
            }
        }
        self.order.push_back((contig.id, index));
        self.blocks.insert((contig.id, index), data.clone());
        Ok(data)
    }

    fn load(&mut self, contig: &Contig, file: &SequenceFile, index: u64) -> Result<Vec<u8>> {
        let read_err = |source: io::Error| Error::SequenceRead {
            name: contig.name.clone(),
            path: file.path.clone(),
            source,
        };
        let record = file.record(&contig.name).ok_or_else(|| {
            read_err(io::Error::new(
                io::ErrorKind::NotFound,
                "not in the FASTA index",
            ))
        })?;
        let start = index * BLOCK;
        let end = (start + BLOCK).min(contig.length);
        let offset_of = |pos: u64| -> io::Result<u64> {
            let p = Position::try_from(pos as usize + 1).map_err(io::Error::other)?;
            record.query(noodles_core::region::Interval::from(p..))
        };
        let first = offset_of(start).map_err(read_err)?;
        let last = offset_of(end - 1).map_err(read_err)?;
        self.raw.resize((last - first + 1) as usize, 0);
        let handle = match self.handles.entry(file.path.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(file.open_handle().map_err(read_err)?)
            }
        };
        handle.read_at(first, &mut self.raw).map_err(read_err)?;
        let mut out: Vec<u8> = Vec::with_capacity((end - start) as usize);
        out.extend(
            self.raw
                .iter()
                .filter(|b| **b != b'\n' && **b != b'\r')
                .map(u8::to_ascii_uppercase),
        );
        if out.len() as u64 != end - start {
            return Err(read_err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the FASTA line layout does not match its .fai index",
            )));
        }
        Ok(out)
    }

    /// A view of one contig for normalization and validation.
    pub fn view<'a>(&'a mut self, contig: &'a Contig) -> ContigView<'a> {
        ContigView {
            reader: self,
            contig,
            current: None,
        }
    }
}

/// Random access to one contig through the reader's cache.
pub struct ContigView<'a> {
    reader: &'a mut SequenceReader,
    contig: &'a Contig,
    current: Option<(u64, Arc<[u8]>)>,
}

impl ContigView<'_> {
    fn block_of(&mut self, pos: u64) -> Result<&[u8]> {
        let index = pos / BLOCK;
        if self.current.as_ref().map(|(i, _)| *i) != Some(index) {
            let b = self.reader.block(self.contig, index)?;
            self.current = Some((index, b));
        }
        Ok(&self.current.as_ref().expect("just set").1)
    }
}

impl Reference for ContigView<'_> {
    fn len(&self) -> u64 {
        self.contig.length
    }

    fn base(&mut self, pos: u64) -> Result<u8> {
        let block = self.block_of(pos)?;
        Ok(block[(pos % BLOCK) as usize])
    }

    fn extend(&mut self, start: u64, end: u64, out: &mut Vec<u8>) -> Result<()> {
        let mut pos = start;
        while pos < end {
            let block_end = (pos / BLOCK + 1) * BLOCK;
            let stop = end.min(block_end);
            let block = self.block_of(pos)?;
            let from = (pos % BLOCK) as usize;
            out.extend_from_slice(&block[from..from + (stop - pos) as usize]);
            pos = stop;
        }
        Ok(())
    }
}
