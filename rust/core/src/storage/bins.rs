//! The search index behind `GET /variations`: every sequence is cut into bins of 16 kb, and
//! `allele_bins` lists, per bin, the alleles whose location touches it. A query reads the bins its
//! range overlaps, so its cost follows the alleles there, not the size of the registry.
//!
//! A row's `alleles` is a list of binary entries: the allele's digest (32 bytes), its start and
//! its length as LEB128 varints; about 37 bytes an allele, with nothing to parse.
//!
//! Locations are closed intervals here, as in AnyVar's overlap search (`int8range(start, end,
//! '[]')`): `[10, 10]` (an insertion) touches position 10, and `[5, 10]` overlaps `[10, 20]`.

use std::ops::RangeInclusive;

use crate::vrs::digest::Digest;

/// log2 of the bin width.
const SHIFT: u32 = 14;
/// A location touching more bins than this is listed once, in [`WIDE`], rather than in every
/// bin (an allele given as VRS JSON may span a whole chromosome).
const MAX_SPAN: u64 = 64;
/// The bin of wide locations; every query reads it.
pub const WIDE: i64 = -1;

/// The bins a location `[start, end]` is listed in.
pub fn of_location(start: u64, end: u64) -> RangeInclusive<i64> {
    let (first, last) = (start >> SHIFT, end.max(start) >> SHIFT);
    if last - first >= MAX_SPAN {
        WIDE..=WIDE
    } else {
        first as i64..=last as i64
    }
}

/// The narrow bins a query range `[start, end]` overlaps (the query also reads [`WIDE`]).
pub fn of_query(start: u64, end: u64) -> (i64, i64) {
    ((start >> SHIFT) as i64, (end.max(start) >> SHIFT) as i64)
}

/// Appends an entry for the allele `digest` at `[start, end]` to `out`.
pub fn encode(out: &mut Vec<u8>, digest: &Digest, start: u64, end: u64) {
    out.extend_from_slice(&digest.0);
    for mut v in [start, end.saturating_sub(start)] {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
}

/// The entries of a row's `alleles`: digest, start, end. Stops at the first malformed entry
/// (a row written by something else), yielding what came before it.
pub fn decode(mut data: &[u8]) -> impl Iterator<Item = (Digest, u64, u64)> + '_ {
    fn varint(data: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = data.split_first()?;
            *data = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    std::iter::from_fn(move || {
        let digest = Digest(data.get(..32)?.try_into().ok()?);
        data = &data[32..];
        let start = varint(&mut data)?;
        let length = varint(&mut data)?;
        Some((digest, start, start.checked_add(length)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_as_encoded() {
        let a = Digest(*b"M7cIKmL1Y_6rCw6rjE0FI1gm3Bqu6cOd");
        let b = Digest(*b"Uh1M3DEgTlOIoVZ-FQPuuXUTPnc6Q7zj");
        let entries = [(a, 0, 0), (b, 127, 128), (a, 1 << 40, u64::MAX)];
        let mut data = Vec::new();
        for (d, s, e) in entries {
            encode(&mut data, &d, s, e);
        }
        assert_eq!(decode(&data).collect::<Vec<_>>(), entries);
        assert_eq!(data.len(), (32 + 1 + 1) * 2 + (32 + 6 + 10), "varints");
        // A cut entry ends the list instead of reading past it.
        assert_eq!(decode(&data[..data.len() - 1]).count(), 2);
    }

    /// A location is found by every query that overlaps it, and only bins decide that.
    #[test]
    fn every_overlapping_query_reads_a_bin_of_the_location() {
        let width = 1u64 << SHIFT;
        let edges = [
            0,
            1,
            width - 1,
            width,
            width + 1,
            3 * width,
            70 * width,
            200 * width,
        ];
        for &s in &edges {
            for &e in &edges {
                if e < s {
                    continue;
                }
                let bins = of_location(s, e);
                for &qs in &edges {
                    for &qe in &edges {
                        if qe < qs || !(s <= qe && e >= qs) {
                            continue;
                        }
                        let (lo, hi) = of_query(qs, qe);
                        let read = bins.clone().any(|b| b == WIDE || (lo..=hi).contains(&b));
                        assert!(read, "location [{s}, {e}] missed by query [{qs}, {qe}]");
                    }
                }
            }
        }
    }

    #[test]
    fn narrow_locations_list_each_bin_they_touch() {
        let width = 1u64 << SHIFT;
        assert_eq!(of_location(5, 5), 0..=0);
        assert_eq!(of_location(width - 1, width), 0..=1);
        assert_eq!(of_location(width, width), 1..=1);
        assert_eq!(of_location(0, MAX_SPAN * width), WIDE..=WIDE);
        assert_eq!(
            of_location(0, (MAX_SPAN - 1) * width),
            0..=(MAX_SPAN as i64 - 1)
        );
        assert_eq!(of_query(width, 2 * width + 3), (1, 2));
    }
}
