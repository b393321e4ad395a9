//! The non-flexible primitives the legacy codecs read and write: big-endian integers, `int16`
//! length strings and `int32` count arrays, as Kafka's protocol guide lays them out.
//!
//! Reads never trust a count beyond what the frame still holds: an array is sized from its
//! count only after checking that its elements, at their smallest, fit in the bytes left.

use anyhow::{Result, bail};
use bytes::{BufMut, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::protocol::buf::ByteBuf;

fn need<B: ByteBuf>(buf: &B, n: usize, what: &str) -> Result<()> {
    if buf.remaining() < n {
        bail!("{what}: needs {n} bytes, {} left", buf.remaining());
    }
    Ok(())
}

pub fn i8<B: ByteBuf>(buf: &mut B) -> Result<i8> {
    need(buf, 1, "int8")?;
    Ok(buf.get_i8())
}

pub fn boolean<B: ByteBuf>(buf: &mut B) -> Result<bool> {
    Ok(i8(buf)? != 0)
}

pub fn i16<B: ByteBuf>(buf: &mut B) -> Result<i16> {
    need(buf, 2, "int16")?;
    Ok(buf.get_i16())
}

pub fn i32<B: ByteBuf>(buf: &mut B) -> Result<i32> {
    need(buf, 4, "int32")?;
    Ok(buf.get_i32())
}

pub fn i64<B: ByteBuf>(buf: &mut B) -> Result<i64> {
    need(buf, 8, "int64")?;
    Ok(buf.get_i64())
}

/// A `string` that may be null (length -1).
pub fn nullable_string<B: ByteBuf>(buf: &mut B) -> Result<Option<StrBytes>> {
    let len = i16(buf)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        bail!("string length {len} is negative");
    }
    let bytes = buf.try_get_bytes(len as usize)?;
    Ok(Some(StrBytes::from_utf8(bytes)?))
}

/// A `string` that must not be null.
pub fn string<B: ByteBuf>(buf: &mut B) -> Result<StrBytes> {
    match nullable_string(buf)? {
        Some(s) => Ok(s),
        None => bail!("null in a non-nullable string field"),
    }
}

/// An array that may be null (count -1), each element at least `min_element` bytes on the wire.
pub fn nullable_array<B: ByteBuf, T>(
    buf: &mut B,
    min_element: usize,
    mut element: impl FnMut(&mut B) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    let count = i32(buf)?;
    if count == -1 {
        return Ok(None);
    }
    if count < 0 {
        bail!("array count {count} is negative");
    }
    let count = count as usize;
    // The count is the client's claim: it sizes the vector only once the bytes left can hold it.
    if count.saturating_mul(min_element.max(1)) > buf.remaining() {
        bail!(
            "array of {count} elements claims more than the {} bytes left",
            buf.remaining()
        );
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(element(buf)?);
    }
    Ok(Some(out))
}

/// An array that must not be null.
pub fn array<B: ByteBuf, T>(
    buf: &mut B,
    min_element: usize,
    element: impl FnMut(&mut B) -> Result<T>,
) -> Result<Vec<T>> {
    match nullable_array(buf, min_element, element)? {
        Some(v) => Ok(v),
        None => bail!("null in a non-nullable array field"),
    }
}

pub fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) -> Result<()> {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            let Ok(len) = i16::try_from(s.len()) else {
                bail!("a string of {} bytes does not fit an int16 length", s.len());
            };
            out.put_i16(len);
            out.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

pub fn put_string(out: &mut BytesMut, s: &str) -> Result<()> {
    put_nullable_string(out, Some(s))
}

pub fn put_bool(out: &mut BytesMut, b: bool) {
    out.put_i8(i8::from(b));
}

pub fn put_array<T>(
    out: &mut BytesMut,
    items: &[T],
    mut element: impl FnMut(&mut BytesMut, &T) -> Result<()>,
) -> Result<()> {
    let Ok(count) = i32::try_from(items.len()) else {
        bail!(
            "an array of {} elements does not fit an int32 count",
            items.len()
        );
    };
    out.put_i32(count);
    for item in items {
        element(out, item)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_count_larger_than_the_bytes_left_is_refused_before_allocating() {
        let mut buf = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        let err = array(&mut buf, 4, i32).unwrap_err();
        assert!(err.to_string().contains("claims more"), "{err}");
    }

    #[test]
    fn null_and_negative_lengths() {
        let mut buf = Bytes::from_static(&[0xff, 0xff]);
        assert_eq!(nullable_string(&mut buf).unwrap(), None);
        let mut buf = Bytes::from_static(&[0xff, 0xff]);
        assert!(string(&mut buf).is_err());
        let mut buf = Bytes::from_static(&[0xff, 0xfe]);
        assert!(nullable_string(&mut buf).is_err());
        let mut buf = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(nullable_array(&mut buf, 1, i8).unwrap(), None);
        let mut buf = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(nullable_array(&mut buf, 1, i8).is_err());
    }

    #[test]
    fn strings_and_arrays_round_trip() {
        let mut out = BytesMut::new();
        put_string(&mut out, "héllo").unwrap();
        put_nullable_string(&mut out, None).unwrap();
        put_array(&mut out, &[1i32, -2], |o, v| {
            o.put_i32(*v);
            Ok(())
        })
        .unwrap();
        let mut buf = out.freeze();
        assert_eq!(&*string(&mut buf).unwrap(), "héllo");
        assert_eq!(nullable_string(&mut buf).unwrap(), None);
        assert_eq!(array(&mut buf, 4, i32).unwrap(), vec![1, -2]);
        assert!(buf.is_empty());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut buf = Bytes::from_static(&[0, 1, 0xff]);
        assert!(string(&mut buf).is_err());
    }
}
