//! A SeqRepo REST service (biocommons seqrepo-rest-service) as a sequence source, the
//! `seqrepo+http://host:port/seqrepo` form that AnyVar and vrs-python default to.
//!
//! Two routes are used, as vrs-python's `SeqRepoRESTDataProxy` uses them:
//! `GET {base}/1/metadata/{namespace}:{alias}` resolves a name (its JSON has `length` and
//! `aliases`, among them `ga4gh:SQ.…`), and `GET {base}/1/sequence/ga4gh:SQ.…?start=&end=` reads
//! residues. The service applies SeqRepo's own namespace rules (`refseq` → `NCBI`, `ga4gh:SQ.` →
//! `VMC:GS_`), so names resolve as they do for a `seqrepo+file://` source.
//!
//! Sequence is fetched in blocks of the readers' block size and kept in a bounded cache shared by
//! all workers (and by the short-lived readers of single translations), so that VCF annotation,
//! which reads the same neighbourhood many times, asks the service once per block.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::files::BLOCK;
use super::{Contig, Store};
use crate::error::{Error, Result};

/// Blocks kept by the shared cache: 256 × 64 KiB = 16 MiB at most.
const CACHED_BLOCKS: usize = 256;
/// The REST API version vrs-python speaks (`SeqRepoRESTDataProxy.rest_version`).
const REST_VERSION: &str = "1";
/// Metadata answers are a few hundred bytes; a whole block of sequence is 64 KiB.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The part of the metadata route's JSON that a source needs.
#[derive(Debug, Deserialize)]
struct Metadata {
    length: u64,
    #[serde(default)]
    aliases: Vec<String>,
}

/// The bounded block cache, first in first out (the readers' own caches sit in front of it).
struct Blocks {
    capacity: usize,
    map: HashMap<(u32, u64), Arc<[u8]>>,
    order: VecDeque<(u32, u64)>,
}

impl Blocks {
    fn new(capacity: usize) -> Self {
        Blocks {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, key: (u32, u64)) -> Option<Arc<[u8]>> {
        self.map.get(&key).cloned()
    }

    fn insert(&mut self, key: (u32, u64), data: Arc<[u8]>) {
        if self.map.contains_key(&key) {
            return;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.order.push_back(key);
        self.map.insert(key, data);
    }
}

pub struct SeqRepoHttp {
    uri: String,
    /// `{base}/1/`, with its trailing slash.
    api: String,
    agent: ureq::Agent,
    contigs: Mutex<HashMap<String, Option<Arc<Contig>>>>,
    blocks: Mutex<Blocks>,
    next_id: AtomicU32,
}

impl std::fmt::Debug for SeqRepoHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeqRepoHttp")
            .field("api", &self.api)
            .finish()
    }
}

/// Percent-encodes one path segment: RFC 3986 `pchar`s stay (so `GRCh38:chr1` reads as it does
/// in vrs-python's URLs); `/`, `%`, `?`, `#`, spaces and non-ASCII bytes are escaped.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name under which a `namespace:alias` query goes to the metadata route.
fn metadata_path(namespace: &str, alias: &str) -> String {
    format!(
        "metadata/{}",
        encode_segment(&format!("{namespace}:{alias}"))
    )
}

/// The refget accession among a metadata answer's aliases.
fn accession_of(aliases: &[String]) -> Option<&str> {
    aliases.iter().find_map(|a| {
        a.strip_prefix("ga4gh:")
            .filter(|acc| acc.starts_with("SQ."))
    })
}

/// `(start, end)` of block `index` of a sequence of `length` residues.
fn block_range(index: u64, length: u64) -> (u64, u64) {
    let start = index * BLOCK;
    (start, (start + BLOCK).min(length))
}

/// A GET's outcome that the caller decides on: found, not found, or anything else.
enum Answer {
    Body(String),
    NotFound,
}

impl SeqRepoHttp {
    /// `base` is the service root as the URI gives it after `seqrepo+`, e.g.
    /// `http://localhost:5000/seqrepo`. The service is asked `/1/ping` once, as vrs-python's
    /// health check does, so that an unreachable or wrong address fails here and not mid-run.
    pub fn open(uri: &str, base: &str) -> Result<SeqRepoHttp> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .user_agent(concat!("anyvar-core/", env!("CARGO_PKG_VERSION")))
            .build();
        let source = SeqRepoHttp {
            uri: uri.to_string(),
            api: format!("{}/{REST_VERSION}/", base.trim_end_matches('/')),
            agent: config.into(),
            contigs: Mutex::new(HashMap::new()),
            blocks: Mutex::new(Blocks::new(CACHED_BLOCKS)),
            next_id: AtomicU32::new(0),
        };
        match source.get("ping", &[])? {
            Answer::Body(_) => Ok(source),
            Answer::NotFound => Err(Error::source(
                uri,
                format!(
                    "no SeqRepo REST service at {}: GET {}ping answered 404 Not Found",
                    base, source.api
                ),
            )),
        }
    }

    /// GETs `{api}{path}`; 404 and 422 (SeqRepo's "several sequences have this alias") are
    /// [`Answer::NotFound`], other failures errors that name the URI and the request.
    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer> {
        let url = format!("{}{path}", self.api);
        let fail = |what: String| {
            Error::source(
                &self.uri,
                format!("SeqRepo REST service request GET {url} failed: {what}"),
            )
        };
        let mut request = self.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, v);
        }
        let mut response = request.call().map_err(|e| fail(describe(&e)))?;
        let status = response.status().as_u16();
        if status == 404 || status == 422 {
            return Ok(Answer::NotFound);
        }
        let mut body = String::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_BODY)
            .read_to_string(&mut body)
            .map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !(200..300).contains(&status) {
            let excerpt: String = body.chars().take(200).collect();
            return Err(fail(format!("HTTP {status}: {}", excerpt.trim())));
        }
        Ok(Answer::Body(body))
    }

    fn contig(self: &Arc<Self>, query: &str, metadata: Metadata) -> Result<Arc<Contig>> {
        let accession = accession_of(&metadata.aliases).ok_or_else(|| {
            Error::source(
                &self.uri,
                format!("the metadata of {query} lists no ga4gh:SQ. alias"),
            )
        })?;
        // One Contig per sequence, whatever name found it: the block caches key on its id.
        let mut contigs = self.contigs.lock().expect("contigs");
        if let Some(Some(known)) = contigs.get(accession) {
            return Ok(known.clone());
        }
        let contig = Arc::new(Contig {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            accession: accession.into(),
            length: metadata.length,
            // Weak: the source holds its contigs, and a contig must not keep its source alive.
            store: Store::Http(Arc::downgrade(self)),
            name: format!("ga4gh:{accession}"),
        });
        contigs.insert(accession.to_string(), Some(contig.clone()));
        Ok(contig)
    }

    /// Resolves `namespace:alias` through the metadata route; unknown names are `Ok(None)`.
    pub fn resolve(self: &Arc<Self>, namespace: &str, alias: &str) -> Result<Option<Arc<Contig>>> {
        let query = format!("{namespace}:{alias}");
        match self.get(&metadata_path(namespace, alias), &[])? {
            Answer::NotFound => Ok(None),
            Answer::Body(text) => {
                let metadata: Metadata = serde_json::from_str(&text).map_err(|e| {
                    Error::source(
                        &self.uri,
                        format!("the metadata of {query} is not SeqRepo's JSON: {e}"),
                    )
                })?;
                self.contig(&query, metadata).map(Some)
            }
        }
    }

    /// `namespace:alias` names of the sequence `accession` (`SQ.…`), as the service lists them.
    pub fn aliases(&self, accession: &str) -> Result<Vec<String>> {
        match self.get(&metadata_path("ga4gh", accession), &[])? {
            Answer::NotFound => Ok(Vec::new()),
            Answer::Body(text) => serde_json::from_str::<Metadata>(&text)
                .map(|m| m.aliases)
                .map_err(|e| {
                    Error::source(
                        &self.uri,
                        format!("the metadata of {accession} is not SeqRepo's JSON: {e}"),
                    )
                }),
        }
    }

    /// Block `index` of a contig, from the shared cache or the sequence route.
    pub(super) fn block(&self, contig: &Contig, index: u64) -> Result<Arc<[u8]>> {
        let key = (contig.id, index);
        if let Some(hit) = self.blocks.lock().expect("blocks").get(key) {
            return Ok(hit);
        }
        // Fetched without the lock held: workers missing different blocks do not wait on
        // each other (two missing the same block fetch it twice, harmlessly).
        let data: Arc<[u8]> = self.fetch(contig, index)?.into();
        self.blocks
            .lock()
            .expect("blocks")
            .insert(key, data.clone());
        Ok(data)
    }

    fn fetch(&self, contig: &Contig, index: u64) -> Result<Vec<u8>> {
        let (start, end) = block_range(index, contig.length);
        let path = format!("sequence/{}", encode_segment(&contig.name));
        let query = [("start", start.to_string()), ("end", end.to_string())];
        let text = match self.get(&path, &query)? {
            Answer::Body(text) => text,
            Answer::NotFound => {
                return Err(Error::source(
                    &self.uri,
                    format!("sequence {} is no longer served (404)", contig.name),
                ))
            }
        };
        let mut residues = text.into_bytes();
        if residues.len() as u64 != end - start {
            return Err(Error::source(
                &self.uri,
                format!(
                    "asked {} [{start}, {end}) and got {} residues instead of {}",
                    contig.name,
                    residues.len(),
                    end - start
                ),
            ));
        }
        residues.make_ascii_uppercase();
        Ok(residues)
    }
}

/// ureq's errors, worded for a user who set the URI.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("the service is unreachable ({io})"),
        ureq::Error::ConnectionFailed => "the service is unreachable (connection failed)".into(),
        ureq::Error::HostNotFound => "the service's host name does not resolve".into(),
        ureq::Error::Timeout(t) => format!("no answer in time ({t})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_one_path_segment() {
        assert_eq!(metadata_path("GRCh38", "chr1"), "metadata/GRCh38:chr1");
        assert_eq!(
            metadata_path("refseq", "NC_000001.11"),
            "metadata/refseq:NC_000001.11"
        );
        assert_eq!(
            metadata_path("ga4gh", "SQ.Ya6Rs7DHhDeg7YaOSg1EoNi3U_nQ9SvO"),
            "metadata/ga4gh:SQ.Ya6Rs7DHhDeg7YaOSg1EoNi3U_nQ9SvO"
        );
        assert_eq!(encode_segment("a/b c%d?e#f"), "a%2Fb%20c%25d%3Fe%23f");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn the_accession_comes_from_the_ga4gh_alias() {
        let json = r#"{"added": "2024-01-01T00:00:00Z", "alphabet": "ACGT", "length": 397,
            "aliases": ["GRCh38:1", "GRCh38:chr1", "MD5:0f6d", "VMC:GS_U0rn",
                        "sha512t24u:U0rn", "ga4gh:SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW"]}"#;
        let metadata: Metadata = serde_json::from_str(json).unwrap();
        assert_eq!(metadata.length, 397);
        assert_eq!(
            accession_of(&metadata.aliases),
            Some("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW")
        );
        assert_eq!(accession_of(&["ga4gh:VA.x".to_string()]), None);
        assert_eq!(accession_of(&[]), None);
    }

    #[test]
    fn the_block_cache_is_bounded() {
        let mut blocks = Blocks::new(2);
        let data = |b: u8| -> Arc<[u8]> { vec![b; 3].into() };
        blocks.insert((0, 0), data(b'A'));
        blocks.insert((1, 0), data(b'C'));
        // a second fetch of a cached block (two workers that missed it together) changes nothing
        blocks.insert((0, 0), data(b'T'));
        assert_eq!(&*blocks.get((0, 0)).unwrap(), b"AAA");
        blocks.insert((0, 1), data(b'G'));
        assert!(blocks.get((0, 0)).is_none(), "the oldest block goes first");
        assert_eq!(&*blocks.get((1, 0)).unwrap(), b"CCC");
        assert_eq!(&*blocks.get((0, 1)).unwrap(), b"GGG");
        assert_eq!((blocks.map.len(), blocks.order.len()), (2, 2));
    }

    #[test]
    fn blocks_tile_the_sequence() {
        assert_eq!(block_range(0, 10), (0, 10));
        assert_eq!(block_range(0, 3 * BLOCK), (0, BLOCK));
        assert_eq!(block_range(2, 2 * BLOCK + 7), (2 * BLOCK, 2 * BLOCK + 7));
    }

    #[test]
    fn an_unreachable_service_is_a_source_error_naming_the_uri() {
        // A port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("seqrepo+http://127.0.0.1:{port}/seqrepo");
        let err = SeqRepoHttp::open(&uri, &format!("http://127.0.0.1:{port}/seqrepo"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("sequence source {uri}: ")),
            "{err}"
        );
        assert!(err.contains("unreachable"), "{err}");
        assert!(err.contains("/seqrepo/1/ping"), "{err}");
    }
}
