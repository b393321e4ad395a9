//! Walks the records inside one v2 batch, one at a time, to check what the header claims about
//! them: that there are exactly `records_count` of them, that their offset deltas run 0, 1, 2,
//! ..., that each record's fields fill exactly its declared size, and what the newest timestamp
//! among them is.
//!
//! A compressed batch is decompressed as a stream through a fixed-size buffer, and keys, values
//! and headers are skipped rather than copied, so memory stays small whatever the batch claims;
//! the total of decompressed bytes is capped, which bounds the CPU a small "decompression bomb"
//! can cost. This module must not allocate in proportion to what a batch claims (the one
//! exception, a raw snappy block, is allocated only once its size is known to be within the
//! cap) and must not keep any record.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::{BatchError, BatchHeader};

/// The largest window a zstd frame may ask for: 16 MiB, enough for every compression level up
/// to 19 (what producers use) while a hostile frame cannot make the decoder reserve 128 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// Decompressed bytes are pulled through a buffer of this size.
const STREAM_BUFFER: usize = 16 * 1024;
/// The xerial framing Java's snappy codec (and so Kafka) writes before its blocks.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block, as Kafka's producer writes them.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Kafka's default `compression.zstd.level`.
const ZSTD_LEVEL: i32 = 3;

/// What the records of a valid batch say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordsSummary {
    /// The newest record timestamp (base timestamp + delta), or -1 when no record has one.
    pub max_timestamp: i64,
    /// The oldest record timestamp.
    pub min_timestamp: i64,
}

/// Checks the records behind `header` (`payload` is everything after the fixed header),
/// decompressing at most `max_uncompressed` bytes.
pub(crate) fn scan(
    header: &BatchHeader,
    payload: &[u8],
    max_uncompressed: usize,
) -> Result<RecordsSummary, BatchError> {
    let (mut max_timestamp, mut min_timestamp) = (-1i64, i64::MAX);
    read(
        header,
        payload,
        max_uncompressed,
        true,
        &mut |_, timestamp| {
            max_timestamp = max_timestamp.max(timestamp);
            min_timestamp = min_timestamp.min(timestamp);
            false
        },
    )?;
    Ok(RecordsSummary {
        max_timestamp,
        min_timestamp,
    })
}

/// The first record behind `header` whose timestamp is at or after `target`, as its offset
/// delta and timestamp. Records are read, within `max_uncompressed`, only up to that one;
/// timestamps wrap past `i64::MAX` as Kafka's (Java's) arithmetic does. The batch is a stored
/// one, so its offset deltas may have gaps where compaction removed records.
pub(crate) fn find_at_or_after(
    header: &BatchHeader,
    payload: &[u8],
    max_uncompressed: usize,
    target: i64,
) -> Result<Option<(i32, i64)>, BatchError> {
    let mut found = None;
    read(
        header,
        payload,
        max_uncompressed,
        false,
        &mut |offset_delta, timestamp| {
            if timestamp >= target {
                found = Some((offset_delta, timestamp));
            }
            found.is_some()
        },
    )?;
    Ok(found)
}

/// The records behind `header` as one uncompressed buffer (at most `max_uncompressed` bytes),
/// to be compressed again with another codec. Only for a batch `scan` has accepted: it is
/// allocated in proportion to the records, which that check bounded.
pub(crate) fn decompress(
    header: &BatchHeader,
    payload: &[u8],
    max_uncompressed: usize,
) -> Result<Vec<u8>, BatchError> {
    let codec = codec_name(header.compression());
    let mut out = Vec::new();
    let read = match header.compression() {
        0 => {
            out.extend_from_slice(payload);
            Ok(0)
        }
        1 => capped(flate2::read::MultiGzDecoder::new(payload), max_uncompressed)
            .read_to_end(&mut out),
        2 => Snappy::new(payload, max_uncompressed).read_to_end(&mut out),
        3 => {
            let decoder = lz4::Decoder::new(payload).map_err(|e| decompression(codec, &e))?;
            capped(decoder, max_uncompressed).read_to_end(&mut out)
        }
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| decompression(codec, &e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| decompression(codec, &e))?;
            capped(decoder, max_uncompressed).read_to_end(&mut out)
        }
        other => return Err(BatchError::UnknownCompression(other)),
    };
    match read {
        Ok(_) => Ok(out),
        Err(e) if is_too_large(&e) => Err(BatchError::UncompressedTooLarge {
            limit: max_uncompressed,
        }),
        Err(e) => Err(decompression(codec, &e)),
    }
}

/// `records` compressed with `codec` (an attribute id, 0 to 4) as Kafka writes each: gzip,
/// snappy in Java's xerial framing, an LZ4 frame, a zstd frame.
pub(crate) fn compress(codec: i16, records: &[u8]) -> Result<Vec<u8>, BatchError> {
    let name = codec_name(codec);
    let failed = |e: io::Error| BatchError::Decompression {
        codec: name,
        detail: format!("compressing: {e}"),
    };
    match codec {
        0 => Ok(records.to_vec()),
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(records).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        2 => {
            let mut out = Vec::with_capacity(records.len() / 2 + XERIAL_HEADER_LEN);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| failed(io::Error::other(e)))?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        3 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .build(Vec::new())
                .map_err(failed)?;
            encoder.write_all(records).map_err(failed)?;
            let (out, result) = encoder.finish();
            result.map_err(failed)?;
            Ok(out)
        }
        4 => zstd::stream::encode_all(records, ZSTD_LEVEL).map_err(failed),
        other => Err(BatchError::UnknownCompression(other)),
    }
}

fn capped<R: Read>(inner: R, remaining: usize) -> Capped<R> {
    Capped { inner, remaining }
}

/// Calls `visit(offset_delta, timestamp)` for each record until it returns true; a batch read
/// to its end must hold no more than its declared records. `contiguous` demands the deltas a
/// producer writes (0, 1, 2, ...); otherwise they need only increase within the batch, as in a
/// compacted one.
type Visit<'a> = dyn FnMut(i32, i64) -> bool + 'a;

fn read(
    header: &BatchHeader,
    payload: &[u8],
    max_uncompressed: usize,
    contiguous: bool,
    visit: &mut Visit<'_>,
) -> Result<(), BatchError> {
    let mut visit = Deltas {
        contiguous,
        last_offset_delta: header.last_offset_delta,
        previous: -1,
        visit,
    };
    let visit = &mut visit;
    match header.compression() {
        0 => walk(
            header,
            &mut SliceSource {
                buf: payload,
                at: 0,
            },
            visit,
        ),
        1 => stream(
            header,
            flate2::read::MultiGzDecoder::new(payload),
            max_uncompressed,
            visit,
        ),
        2 => stream(
            header,
            Snappy::new(payload, max_uncompressed),
            max_uncompressed,
            visit,
        ),
        3 => {
            let decoder = lz4::Decoder::new(payload).map_err(|e| decompression("lz4", &e))?;
            stream(header, decoder, max_uncompressed, visit)
        }
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| decompression("zstd", &e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| decompression("zstd", &e))?;
            stream(header, decoder, max_uncompressed, visit)
        }
        codec => Err(BatchError::UnknownCompression(codec)),
    }
}

/// Checks each record's offset delta before passing it on.
struct Deltas<'v, 'a> {
    contiguous: bool,
    last_offset_delta: i32,
    previous: i32,
    visit: &'v mut Visit<'a>,
}

impl Deltas<'_, '_> {
    fn record(
        &mut self,
        index: i32,
        offset_delta: i32,
        timestamp: i64,
    ) -> Result<bool, BatchError> {
        let ok = if self.contiguous {
            offset_delta == index
        } else {
            offset_delta > self.previous && offset_delta <= self.last_offset_delta
        };
        if !ok {
            return Err(BatchError::OffsetDeltaMismatch {
                index,
                offset_delta,
            });
        }
        self.previous = offset_delta;
        Ok((self.visit)(offset_delta, timestamp))
    }
}

fn stream<R: Read>(
    header: &BatchHeader,
    decoder: R,
    max_uncompressed: usize,
    visit: &mut Deltas<'_, '_>,
) -> Result<(), BatchError> {
    let mut source = StreamSource {
        reader: BufReader::with_capacity(
            STREAM_BUFFER,
            Capped {
                inner: decoder,
                remaining: max_uncompressed,
            },
        ),
        at: 0,
        codec: codec_name(header.compression()),
        limit: max_uncompressed,
    };
    walk(header, &mut source, visit)
}

fn walk(
    header: &BatchHeader,
    source: &mut impl Source,
    visit: &mut Deltas<'_, '_>,
) -> Result<(), BatchError> {
    for index in 0..header.records_count {
        let (offset_delta, timestamp) = record(source, index, header.base_timestamp)?;
        if visit.record(index, offset_delta, timestamp)? {
            return Ok(());
        }
    }
    if !source.at_end()? {
        return Err(BatchError::RecordsRemaining {
            count: header.records_count,
        });
    }
    Ok(())
}

/// Reads one record; returns its offset delta and timestamp.
fn record(
    source: &mut impl Source,
    index: i32,
    base_timestamp: i64,
) -> Result<(i32, i64), BatchError> {
    let malformed = |reason: &'static str| BatchError::MalformedRecord { index, reason };
    let size = varint(source, index)?;
    if size < 0 {
        return Err(malformed("negative record size"));
    }
    let end = source.position() + size as u64;
    let _attributes = source.byte(index)?;
    let timestamp_delta = varlong(source, index)?;
    let offset_delta = varint(source, index)?;
    // Key, then value; -1 is null.
    for _ in 0..2 {
        let len = varint(source, index)?;
        if len < -1 {
            return Err(malformed("negative key or value length"));
        }
        skip_field(source, len, end, index)?;
    }
    let headers = varint(source, index)?;
    if headers < 0 {
        return Err(malformed("negative header count"));
    }
    for _ in 0..headers {
        let key = varint(source, index)?;
        if key < 0 {
            return Err(malformed("negative header key length"));
        }
        skip_field(source, key, end, index)?;
        let value = varint(source, index)?;
        if value < -1 {
            return Err(malformed("negative header value length"));
        }
        skip_field(source, value, end, index)?;
    }
    if source.position() != end {
        return Err(malformed("fields do not fill the record size"));
    }
    Ok((offset_delta, base_timestamp.wrapping_add(timestamp_delta)))
}

/// Skips a key, value or header field of `len` bytes (none when negative, i.e. null), which
/// must end within the record.
fn skip_field(source: &mut impl Source, len: i32, end: u64, index: i32) -> Result<(), BatchError> {
    let len = len.max(0) as u64;
    if source.position() + len > end {
        return Err(BatchError::MalformedRecord {
            index,
            reason: "a field runs past the record size",
        });
    }
    source.skip(len, index)
}

/// Zigzag-encoded variable-length i32, as Kafka writes record fields.
fn varint(source: &mut impl Source, index: i32) -> Result<i32, BatchError> {
    let raw = unsigned_varint(source, index, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(BatchError::MalformedRecord {
            index,
            reason: "varint out of range",
        });
    }
    let raw = raw as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Zigzag-encoded variable-length i64.
fn varlong(source: &mut impl Source, index: i32) -> Result<i64, BatchError> {
    let raw = unsigned_varint(source, index, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn unsigned_varint(
    source: &mut impl Source,
    index: i32,
    max_bytes: u32,
) -> Result<u64, BatchError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = source.byte(index)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BatchError::MalformedRecord {
        index,
        reason: "varint longer than its type",
    })
}

/// Where record bytes come from: the batch itself, or a decompressing stream.
trait Source {
    fn byte(&mut self, index: i32) -> Result<u8, BatchError>;
    fn skip(&mut self, n: u64, index: i32) -> Result<(), BatchError>;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
    fn at_end(&mut self) -> Result<bool, BatchError>;
}

fn premature_end(index: i32) -> BatchError {
    BatchError::MalformedRecord {
        index,
        reason: "records end before the declared count",
    }
}

struct SliceSource<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Source for SliceSource<'_> {
    fn byte(&mut self, index: i32) -> Result<u8, BatchError> {
        let b = *self.buf.get(self.at).ok_or_else(|| premature_end(index))?;
        self.at += 1;
        Ok(b)
    }

    fn skip(&mut self, n: u64, index: i32) -> Result<(), BatchError> {
        let left = (self.buf.len() - self.at) as u64;
        if n > left {
            return Err(premature_end(index));
        }
        self.at += n as usize;
        Ok(())
    }

    fn position(&self) -> u64 {
        self.at as u64
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.at == self.buf.len())
    }
}

struct StreamSource<R: Read> {
    reader: BufReader<Capped<R>>,
    at: u64,
    codec: &'static str,
    limit: usize,
}

impl<R: Read> StreamSource<R> {
    fn fill(&mut self, index: i32) -> Result<&[u8], BatchError> {
        let (codec, limit) = (self.codec, self.limit);
        self.reader.fill_buf().map_err(|e| {
            if is_too_large(&e) {
                BatchError::UncompressedTooLarge { limit }
            } else if e.kind() == io::ErrorKind::UnexpectedEof {
                premature_end(index)
            } else {
                decompression(codec, &e)
            }
        })
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self, index: i32) -> Result<u8, BatchError> {
        let b = *self
            .fill(index)?
            .first()
            .ok_or_else(|| premature_end(index))?;
        self.reader.consume(1);
        self.at += 1;
        Ok(b)
    }

    fn skip(&mut self, mut n: u64, index: i32) -> Result<(), BatchError> {
        while n > 0 {
            let available = self.fill(index)?.len() as u64;
            if available == 0 {
                return Err(premature_end(index));
            }
            let step = available.min(n);
            self.reader.consume(step as usize);
            self.at += step;
            n -= step;
        }
        Ok(())
    }

    fn position(&self) -> u64 {
        self.at
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.fill(-1)?.is_empty())
    }
}

/// Marks the error a [`Capped`] reader returns once the cap is passed.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size over the limit")
    }
}

impl std::error::Error for TooLarge {}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
}

/// Fails a read once more than `remaining` bytes have come out of `inner`.
struct Capped<R> {
    inner: R,
    remaining: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.remaining = self
            .remaining
            .checked_sub(n)
            .ok_or_else(|| io::Error::other(TooLarge))?;
        Ok(n)
    }
}

/// Kafka's snappy: Java's xerial framing (a 16-byte header, then blocks each prefixed with its
/// compressed length) or, as librdkafka writes it, one raw snappy block. A raw block is only
/// decoded whole, so each block is allocated once its declared size is known to fit the cap.
struct Snappy<'a> {
    input: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    at: usize,
    remaining: usize,
}

impl<'a> Snappy<'a> {
    fn new(input: &'a [u8], max_uncompressed: usize) -> Self {
        let framed = input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC);
        Self {
            input: if framed {
                &input[XERIAL_HEADER_LEN..]
            } else {
                input
            },
            framed,
            block: Vec::new(),
            at: 0,
            remaining: max_uncompressed,
        }
    }

    fn next_block(&mut self) -> io::Result<()> {
        let compressed = if self.framed {
            let Some((len, rest)) = self.input.split_first_chunk::<4>() else {
                return Err(io::Error::other("snappy block length truncated"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return Err(io::Error::other("snappy block truncated"));
            }
            let (block, rest) = rest.split_at(len);
            self.input = rest;
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let len = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        self.remaining = self
            .remaining
            .checked_sub(len)
            .ok_or_else(|| io::Error::other(TooLarge))?;
        self.block.resize(len, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.at = 0;
        Ok(())
    }
}

impl Read for Snappy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.input.is_empty() {
                return Ok(0);
            }
            self.next_block()?;
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn codec_name(codec: i16) -> &'static str {
    match codec {
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "none",
    }
}

fn decompression(codec: &'static str, e: &io::Error) -> BatchError {
    BatchError::Decompression {
        codec,
        detail: e.to_string(),
    }
}
