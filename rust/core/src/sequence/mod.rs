//! Reference sequences: where they come from (a SeqRepo instance, a SeqRepo REST service or a FASTA
//! file, chosen by a URI as in AnyVar's `SEQREPO_DATAPROXY_URI`), how an alias like `GRCh38:chr1` resolves to a refget
//! accession, and windowed reading with a small per-worker block cache. Nothing here loads a whole
//! sequence into memory. Each kind of source is a `SequenceStore`; new kinds plug in there.

mod fasta;
mod files;
mod http;
mod seqrepo;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use self::files::SequenceFile;
pub use self::files::{ContigView, SequenceReader};
use crate::error::{Error, Result};

/// One sequence of a source.
#[derive(Debug)]
pub struct Contig {
    /// Unique within its source; keys the block caches.
    pub(crate) id: u32,
    /// Refget accession, `SQ.…`.
    pub accession: Arc<str>,
    pub length: u64,
    pub(crate) store: Store,
    /// Record name inside the file (the SeqRepo `seq_id`, or the FASTA contig name); for a REST
    /// service, the name its sequence route is asked for (`ga4gh:SQ.…`).
    pub(crate) name: String,
}

/// Where a contig's residues are read from.
#[derive(Debug)]
pub(crate) enum Store {
    /// An indexed FASTA file (a SeqRepo instance's BGZF files, or a FASTA source).
    File(Arc<SequenceFile>),
    /// A SeqRepo REST service and its shared block cache (weak: the source owns its contigs).
    Http(Weak<http::SeqRepoHttp>),
}

/// A lookup's answer, cached: unknown names are remembered too.
type Resolved = Option<Arc<Contig>>;

/// A service resolves whatever names its clients send (`PUT /variations`), so the cache of
/// answers starts over at this size instead of growing by every unknown name (found by the
/// definitions fuzz target, whose memory grew without bound).
const RESOLVED_ENTRIES: usize = 100_000;

/// A kind of sequence store: what names a sequence and finds it. A SeqRepo instance
/// ([`seqrepo`]), a SeqRepo REST service ([`http`]) and a FASTA file ([`fasta`]) implement it;
/// a new kind plugs in here and in [`parse_uri`]/[`SequenceSource::open`], and, if its residues
/// are read neither from an indexed FASTA file nor over HTTP, in [`Store`] (which the block
/// cache of [`SequenceReader`] reads through).
pub(crate) trait SequenceStore: Send + Sync {
    /// Resolves `namespace:alias`; an unknown name is `Ok(None)`, never an error.
    fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>>;
    /// The `namespace:alias` names of the sequence `accession` (`SQ.…`); none for a sequence
    /// the store does not have.
    fn aliases(&self, accession: &str) -> Result<Vec<String>>;
}

impl SequenceStore for seqrepo::SeqRepo {
    fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        seqrepo::SeqRepo::resolve(self, namespace, alias)
    }

    fn aliases(&self, accession: &str) -> Result<Vec<String>> {
        match accession.strip_prefix("SQ.") {
            Some(digest) => seqrepo::SeqRepo::aliases(self, digest),
            None => Ok(Vec::new()),
        }
    }
}

/// The service is held in an `Arc`: its contigs keep a weak reference to its block cache.
impl SequenceStore for Arc<http::SeqRepoHttp> {
    fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        http::SeqRepoHttp::resolve(self, namespace, alias)
    }

    fn aliases(&self, accession: &str) -> Result<Vec<String>> {
        http::SeqRepoHttp::aliases(self, accession)
    }
}

impl SequenceStore for fasta::FastaAliases {
    fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        Ok(fasta::FastaAliases::resolve(self, namespace, alias))
    }

    fn aliases(&self, accession: &str) -> Result<Vec<String>> {
        Ok(fasta::FastaAliases::aliases(self, accession))
    }
}

/// A source of reference sequences, shared by all workers of a run (and across runs).
pub struct SequenceSource {
    uri: String,
    store: Box<dyn SequenceStore>,
    resolved: Mutex<HashMap<(String, String), Resolved>>,
}

impl std::fmt::Debug for SequenceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceSource")
            .field("uri", &self.uri)
            .finish()
    }
}

/// What a URI names.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    SeqRepo(PathBuf),
    /// The service root, e.g. `http://localhost:5000/seqrepo`.
    SeqRepoHttp(String),
    Fasta {
        path: PathBuf,
        assembly: String,
    },
}

fn parse_uri(uri: &str) -> Result<Location> {
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| {
        Error::source(
            uri,
            "not a URI: expected seqrepo+file:///path, seqrepo+http://host:port/seqrepo or fasta+file:///path.fa",
        )
    })?;
    if let Some(proto) = scheme
        .strip_prefix("seqrepo+")
        .filter(|p| *p == "http" || *p == "https")
    {
        // As vrs-python's create_dataproxy: the URI less `seqrepo+` is the service root.
        let host = rest
            .strip_prefix("//")
            .map(|after| after.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        if host.is_empty() {
            return Err(Error::source(
                uri,
                format!("the URI names no host: expected {scheme}://host:port/seqrepo"),
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(Error::source(
                uri,
                "a SeqRepo REST URI takes no parameters: expected seqrepo+http://host:port/seqrepo",
            ));
        }
        return Ok(Location::SeqRepoHttp(format!("{proto}:{rest}")));
    }
    // `x+file:///abs` and `x+:relative` are the two forms AnyVar documents.
    let path_part = match rest.strip_prefix("//") {
        Some(after) => after.strip_prefix("localhost").unwrap_or(after),
        None => rest,
    };
    let (path_part, query) = match path_part.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_part, None),
    };
    if path_part.is_empty() {
        return Err(Error::source(uri, "the URI names no path"));
    }
    let path = PathBuf::from(path_part);
    match scheme {
        "seqrepo+file" | "seqrepo+" | "seqrepo" => Ok(Location::SeqRepo(path)),
        "fasta+file" | "fasta+" | "fasta" => {
            let mut assembly = "GRCh38".to_string();
            for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("assembly", value)) if !value.is_empty() => assembly = value.to_string(),
                    _ => {
                        return Err(Error::source(
                            uri,
                            format!("unknown URI parameter {pair:?}; only assembly=NAME is understood"),
                        ))
                    }
                }
            }
            Ok(Location::Fasta { path, assembly })
        }
        other => Err(Error::source(
            uri,
            format!("unknown scheme {other:?}; use seqrepo+file:///path/to/instance, seqrepo+:relative/path, seqrepo+http://host:port/seqrepo or fasta+file:///path/ref.fa?assembly=GRCh38"),
        )),
    }
}

impl SequenceSource {
    /// Opens the source a URI names. `cache_dir` is where derived files (FASTA refget digests)
    /// go when they cannot be written beside the FASTA.
    pub fn open(uri: &str, cache_dir: Option<&Path>) -> Result<SequenceSource> {
        let store: Box<dyn SequenceStore> = match parse_uri(uri)? {
            Location::SeqRepo(path) => Box::new(seqrepo::SeqRepo::open(uri, &path)?),
            Location::SeqRepoHttp(base) => Box::new(Arc::new(http::SeqRepoHttp::open(uri, &base)?)),
            Location::Fasta { path, assembly } => {
                Box::new(fasta::FastaAliases::open(uri, &path, &assembly, cache_dir)?)
            }
        };
        Ok(SequenceSource {
            uri: uri.to_string(),
            store,
            resolved: Mutex::new(HashMap::new()),
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Resolves `namespace:alias` (e.g. `GRCh38`, `chr1`; `refseq`, `NC_000001.11`; `ga4gh`,
    /// `SQ.…`). Unknown names are `Ok(None)`, never an error.
    pub fn resolve(&self, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        let key = (namespace.to_string(), alias.to_string());
        if let Some(hit) = self.resolved.lock().expect("resolve cache").get(&key) {
            return Ok(hit.clone());
        }
        let found = self.store.resolve(namespace, alias)?;
        let mut resolved = self.resolved.lock().expect("resolve cache");
        if resolved.len() >= RESOLVED_ENTRIES {
            resolved.clear();
        }
        resolved.insert(key, found.clone());
        Ok(found)
    }

    /// The `namespace:alias` names the source knows for the sequence `accession` (`SQ.…`);
    /// none for a sequence it does not have.
    pub fn aliases(&self, accession: &str) -> Result<Vec<String>> {
        self.store.aliases(accession)
    }

    /// Resolves a sequence name in the `namespace:alias` form vrs-python uses (`GRCh38:chr1`).
    pub fn resolve_name(&self, name: &str) -> Result<Option<Arc<Contig>>> {
        match name.split_once(':') {
            Some((ns, alias)) if !alias.contains(':') => self.resolve(ns, alias),
            _ => Ok(None),
        }
    }

    /// A reader for one worker thread: its own file handles and block cache.
    pub fn reader(&self) -> SequenceReader {
        SequenceReader::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_do_not_grow_the_cache_without_bound() {
        let dir = tempfile::tempdir().unwrap();
        let fasta = dir.path().join("ref.fa");
        std::fs::write(&fasta, ">chr1\nACGT\n").unwrap();
        std::fs::write(dir.path().join("ref.fa.fai"), "chr1\t4\t6\t4\t5\n").unwrap();
        let source =
            SequenceSource::open(&format!("fasta+file://{}", fasta.display()), None).unwrap();
        for i in 0..RESOLVED_ENTRIES + 10 {
            let name = format!("NC_{i}.1");
            assert!(source.resolve("refseq", &name).unwrap().is_none());
        }
        assert!(source.resolved.lock().unwrap().len() <= RESOLVED_ENTRIES);
        assert!(source.resolve("GRCh38", "chr1").unwrap().is_some());
    }

    #[test]
    fn uri_forms() {
        assert_eq!(
            parse_uri("seqrepo+file:///data/seqrepo/2024-12-20").unwrap(),
            Location::SeqRepo("/data/seqrepo/2024-12-20".into())
        );
        assert_eq!(
            parse_uri("seqrepo+:relative/path").unwrap(),
            Location::SeqRepo("relative/path".into())
        );
        assert_eq!(
            parse_uri("fasta+file:///ref/hg38.fa.gz?assembly=GRCh37").unwrap(),
            Location::Fasta {
                path: "/ref/hg38.fa.gz".into(),
                assembly: "GRCh37".into()
            }
        );
        assert_eq!(
            parse_uri("fasta+:ref.fa").unwrap(),
            Location::Fasta {
                path: "ref.fa".into(),
                assembly: "GRCh38".into()
            }
        );
        assert_eq!(
            parse_uri("seqrepo+http://localhost:5000/seqrepo").unwrap(),
            Location::SeqRepoHttp("http://localhost:5000/seqrepo".into())
        );
        assert_eq!(
            parse_uri("seqrepo+https://seqrepo.example/api/seqrepo/").unwrap(),
            Location::SeqRepoHttp("https://seqrepo.example/api/seqrepo/".into())
        );
        for bad in [
            "seqrepo+http://",
            "seqrepo+http:relative",
            "seqrepo+http://localhost:5000/seqrepo?x=1",
            "seqrepo+ftp://localhost/seqrepo",
            "s3://bucket/x",
            "/just/a/path",
            "fasta+file:///r.fa?species=human",
            "seqrepo+file://",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad} should be refused");
        }
    }
}
