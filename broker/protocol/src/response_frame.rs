//! A response frame as a run of byte buffers, so that the records of a Fetch response go to the
//! socket from the buffer the log read them into, instead of being copied into the frame first.
//!
//! [`Lending`] is the buffer the `kafka-protocol` encoders write into. It is lent the records
//! buffers of the response; a slice the encoder puts that lies inside one of them (records are
//! put whole, with `put_slice`) becomes a reference to it, everything else (lengths, offsets,
//! error codes) is copied into small buffers between them. The frame then holds the records
//! once, not twice, and the copy the size of the response is gone.
//!
//! This module encodes nothing itself and does no I/O.
#![allow(unsafe_code)]

use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Slices shorter than this are copied even when lent: a separate buffer costs more to write.
pub const LEND_MIN: usize = 4096;

/// A whole response frame, length prefix first, as the buffers to write in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFrame {
    parts: Vec<Bytes>,
    len: usize,
}

impl ResponseFrame {
    /// Bytes in the whole frame.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffers to write, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The frame in one buffer (a copy unless it is one already).
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            parts => {
                let mut all = BytesMut::with_capacity(self.len);
                parts.iter().for_each(|p| all.extend_from_slice(p));
                all.freeze()
            }
        }
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(bytes: Bytes) -> Self {
        let len = bytes.len();
        Self {
            parts: if bytes.is_empty() {
                vec![]
            } else {
                vec![bytes]
            },
            len,
        }
    }
}

/// An encoder's buffer that references, rather than copies, slices of the buffers it is lent.
#[derive(Debug)]
pub struct Lending {
    lenders: Vec<Bytes>,
    parts: Vec<Bytes>,
    /// Bytes in `parts`.
    done: usize,
    tail: BytesMut,
}

impl Lending {
    /// A buffer lent `lenders`, with room for `copied` bytes written between them.
    pub fn new(lenders: Vec<Bytes>, copied: usize) -> Self {
        Self {
            lenders: lenders
                .into_iter()
                .filter(|b| b.len() >= LEND_MIN)
                .collect(),
            parts: Vec::new(),
            done: 0,
            tail: BytesMut::with_capacity(copied),
        }
    }

    pub fn finish(mut self) -> ResponseFrame {
        self.close_tail();
        ResponseFrame {
            parts: self.parts,
            len: self.done,
        }
    }

    /// The lent buffer `src` lies in, sliced to it.
    fn lent(&self, src: &[u8]) -> Option<Bytes> {
        if src.len() < LEND_MIN {
            return None;
        }
        let start = src.as_ptr() as usize;
        let end = start + src.len();
        self.lenders
            .iter()
            .find(|b| {
                let from = b.as_ptr() as usize;
                from <= start && end <= from + b.len()
            })
            .map(|b| b.slice_ref(src))
    }

    fn close_tail(&mut self) {
        if !self.tail.is_empty() {
            let copied = self.tail.split().freeze();
            self.done += copied.len();
            self.parts.push(copied);
        }
    }

    /// Makes the bytes from `offset` on writable again: a gap the encoder fills later that reaches
    /// back past a lent slice (no message encoder does this; records' own encoder does, but
    /// never into this buffer) takes those bytes back into the tail as a copy.
    fn writable_from(&mut self, offset: usize) {
        if offset >= self.done {
            return;
        }
        let mut back = BytesMut::new();
        while self.done > offset {
            let Some(part) = self.parts.pop() else { break };
            self.done -= part.len();
            let mut joined = BytesMut::with_capacity(part.len() + back.len());
            joined.extend_from_slice(&part);
            joined.extend_from_slice(&back);
            back = joined;
        }
        back.extend_from_slice(&self.tail);
        self.tail = back;
    }
}

// SAFETY: every method hands on to `tail`, a `BytesMut`, whose own `BufMut` is sound; the
// overridden `put_slice` either appends a whole slice to `parts` or puts it into `tail`.
unsafe impl BufMut for Lending {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (`cnt` bytes of `chunk_mut` initialised) is for `tail`.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.lent(src) {
            Some(part) => {
                self.close_tail();
                self.done += part.len();
                self.parts.push(part);
            }
            None => self.tail.put_slice(src),
        }
    }
}

impl ByteBufMut for Lending {
    fn offset(&self) -> usize {
        self.done + self.tail.len()
    }

    fn seek(&mut self, offset: usize) {
        self.writable_from(offset);
        self.tail.resize(offset - self.done, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        self.writable_from(r.start);
        &mut self.tail[r.start - self.done..r.end - self.done]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_slice_is_referenced_and_everything_else_copied() {
        let records = Bytes::from(vec![9u8; 10_000]);
        let mut buf = Lending::new(vec![records.clone()], 64);
        buf.put_i32(7);
        buf.put_slice(&records[100..9_000]);
        buf.put_slice(&records[0..10]);
        buf.put_i16(-1);
        let frame = buf.finish();
        assert_eq!(frame.len(), 4 + 8_900 + 10 + 2);
        assert_eq!(frame.parts().len(), 3);
        assert_eq!(
            frame.parts()[1].as_ptr(),
            records[100..].as_ptr(),
            "the records are the lent buffer, not a copy"
        );
        let mut expected = vec![0, 0, 0, 7];
        expected.extend_from_slice(&records[100..9_000]);
        expected.extend_from_slice(&records[0..10]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(frame.to_bytes(), expected);
    }

    #[test]
    fn a_slice_of_a_buffer_not_lent_is_copied() {
        let lent = Bytes::from(vec![1u8; 8_192]);
        let other = vec![2u8; 8_192];
        let mut buf = Lending::new(vec![lent], 16);
        buf.put_slice(&other);
        let frame = buf.finish();
        assert_eq!(frame.parts().len(), 1);
        assert_eq!(frame.to_bytes(), other);
    }

    #[test]
    fn a_gap_filled_after_a_lent_slice_is_written_into_a_copy() {
        let records = Bytes::from(vec![5u8; 5_000]);
        let mut buf = Lending::new(vec![records.clone()], 16);
        let gap = buf.put_gap(4);
        buf.put_slice(&records);
        buf.put_u8(1);
        buf.gap_buf(gap).copy_from_slice(&[1, 2, 3, 4]);
        let frame = buf.finish();
        let mut expected = vec![1, 2, 3, 4];
        expected.extend_from_slice(&records);
        expected.push(1);
        assert_eq!(frame.to_bytes(), expected);
        assert_eq!(frame.len(), expected.len());
    }
}
