//! External sorting for the loader: rows are buffered, sorted and spilled in segments to
//! anonymous temporary files (under `TMPDIR`; the system removes them even if the process is
//! killed), then merged back in key order. Memory holds one segment plus one row per segment.
//!
//! Written here rather than taken from the `extsort` crate: its 0.5.0 silently drops every
//! spilled segment when the row count is a multiple of the segment size plus one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// A row that can be spilled and read back.
pub(crate) trait Spill: Sized {
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
    fn encode(&self, w: &mut impl Write) -> std::io::Result<()>;
    fn decode(r: &mut impl Read) -> std::io::Result<Self>;
}

/// A sorted segment on disk and the rows it has left to give.
pub(crate) struct Segment {
    reader: BufReader<File>,
    left: usize,
}

impl Segment {
    fn next<T: Spill>(&mut self) -> std::io::Result<Option<T>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        T::decode(&mut self.reader).map(Some)
    }
}

pub(crate) struct Sorter<T: Spill> {
    segment_rows: usize,
    buffer: Vec<T>,
    segments: Vec<Segment>,
}

impl<T: Spill> Sorter<T> {
    pub fn new(segment_rows: usize) -> Sorter<T> {
        Sorter {
            segment_rows: segment_rows.max(1),
            buffer: Vec::new(),
            segments: Vec::new(),
        }
    }

    pub fn push(&mut self, row: T) -> std::io::Result<()> {
        self.buffer.push(row);
        if self.buffer.len() >= self.segment_rows {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        // Sort keys with positions, not rows: rows are large to move, and a key beside its
        // position needs no trip into the buffer per comparison.
        let mut order: Vec<(T::Key, u32)> = (self.buffer.iter().enumerate())
            .map(|(i, row)| (row.key(), i as u32))
            .collect();
        order.sort_unstable();
        let mut w = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
        for (_, i) in order {
            self.buffer[i as usize].encode(&mut w)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.segments.push(Segment {
            reader: BufReader::with_capacity(1 << 16, file),
            left: self.buffer.len(),
        });
        self.buffer.clear();
        Ok(())
    }

    /// Every row pushed, in key order (rows with equal keys in no particular order).
    pub fn sorted(mut self) -> std::io::Result<Sorted<T>> {
        if self.segments.is_empty() {
            self.buffer.sort_unstable_by_key(T::key);
            self.buffer.reverse();
            return Ok(Sorted::Memory(self.buffer));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut heads = Vec::with_capacity(self.segments.len());
        let mut heap = BinaryHeap::with_capacity(self.segments.len());
        for (i, segment) in self.segments.iter_mut().enumerate() {
            let head = segment.next::<T>()?;
            if let Some(row) = &head {
                heap.push(Reverse((row.key(), i)));
            }
            heads.push(head);
        }
        Ok(Sorted::Merge {
            segments: self.segments,
            heads,
            heap,
        })
    }
}

pub(crate) enum Sorted<T: Spill> {
    /// Never spilled: the buffer, sorted in reverse so that rows pop off its end.
    Memory(Vec<T>),
    Merge {
        segments: Vec<Segment>,
        /// The next row of each segment.
        heads: Vec<Option<T>>,
        /// Keys of the heads, smallest on top.
        heap: BinaryHeap<Reverse<(T::Key, usize)>>,
    },
}

impl<T: Spill> Iterator for Sorted<T> {
    type Item = std::io::Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(rows) => rows.pop().map(Ok),
            Sorted::Merge {
                segments,
                heads,
                heap,
            } => {
                let Reverse((_, i)) = heap.pop()?;
                let row = heads[i].take().expect("a head for every key in the heap");
                match segments[i].next::<T>() {
                    Ok(Some(next)) => {
                        heap.push(Reverse((next.key(), i)));
                        heads[i] = Some(next);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        heap.clear();
                        return Some(Err(e));
                    }
                }
                Some(Ok(row))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Spill for (u32, u32) {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
        fn encode(&self, w: &mut impl Write) -> std::io::Result<()> {
            w.write_all(&self.0.to_le_bytes())?;
            w.write_all(&self.1.to_le_bytes())
        }
        fn decode(r: &mut impl Read) -> std::io::Result<Self> {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            Ok((
                u32::from_le_bytes(b[..4].try_into().unwrap()),
                u32::from_le_bytes(b[4..].try_into().unwrap()),
            ))
        }
    }

    /// Every row comes back once, in key order, for counts around the segment size (empty,
    /// in memory, exact multiples, one more) and with repeated keys.
    #[test]
    fn returns_every_row_in_key_order() {
        let mut state = 7u32;
        for count in [0, 1, 3, 4, 5, 8, 9, 12, 13, 100] {
            let rows: Vec<(u32, u32)> = (0..count)
                .map(|i| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (state % 17, i)
                })
                .collect();
            let mut sorter = Sorter::new(4);
            for r in &rows {
                sorter.push(*r).unwrap();
            }
            let out: Vec<(u32, u32)> = sorter.sorted().unwrap().map(Result::unwrap).collect();
            let keys: Vec<u32> = out.iter().map(|r| r.0).collect();
            let mut sorted_keys = keys.clone();
            sorted_keys.sort_unstable();
            assert_eq!(keys, sorted_keys, "{count} rows");
            let mut got = out.clone();
            got.sort_unstable();
            let mut want = rows.clone();
            want.sort_unstable();
            assert_eq!(got, want, "{count} rows");
        }
    }
}
