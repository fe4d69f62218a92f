//! The one place input compression is recognised, by content (never by file name): VCF input
//! (`vcf::io`), ranges of a VCF (`vcf::range`) and FASTA files (`sequence`) all ask here.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The gzip header flag saying an extra field follows (RFC 1952, 2.3.1).
const FEXTRA: u8 = 0x04;
/// Bytes of a file's start [`detect`] looks at: a BGZF block's header up to its `BC` subfield.
pub(crate) const HEAD_BYTES: usize = 14;

/// What a file's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Plain,
    /// gzip that is not BGZF; `extra`: its header has an extra field (not BGZF's `BC` one).
    Gzip {
        extra: bool,
    },
    /// BGZF: gzip whose extra field starts with the `BC` subfield (SAM/BAM specification,
    /// 4.1), which gets the block decoders.
    Bgzf,
}

/// The format of data starting with `head` (at most [`HEAD_BYTES`] of it are read).
pub(crate) fn detect(head: &[u8]) -> Format {
    if !head.starts_with(&GZIP_MAGIC) {
        return Format::Plain;
    }
    let extra = head.len() >= 4 && head[3] & FEXTRA != 0;
    if extra && head.len() >= HEAD_BYTES && head[12..14] == *b"BC" {
        Format::Bgzf
    } else {
        Format::Gzip { extra }
    }
}

/// The format of the file at `path`, from its first bytes.
pub(crate) fn detect_file(path: &Path) -> io::Result<Format> {
    let mut file = File::open(path)?;
    let mut head = [0u8; HEAD_BYTES];
    let n = read_up_to(&mut file, &mut head)?;
    Ok(detect(&head[..n]))
}

/// Fills `buf` as far as the reader goes; the bytes read.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_content() {
        let bgzf = [
            0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, b'B', b'C', 0x02, 0,
        ];
        assert_eq!(detect(&bgzf), Format::Bgzf);
        assert_eq!(detect(&bgzf[..13]), Format::Gzip { extra: true });
        let mut other_extra = bgzf;
        other_extra[12] = b'X';
        assert_eq!(detect(&other_extra), Format::Gzip { extra: true });
        assert_eq!(
            detect(&[0x1f, 0x8b, 0x08, 0]),
            Format::Gzip { extra: false }
        );
        assert_eq!(detect(&[0x1f, 0x8b]), Format::Gzip { extra: false });
        assert_eq!(detect(b"##fileformat=VCFv4.2"), Format::Plain);
        assert_eq!(detect(b""), Format::Plain);
    }
}
