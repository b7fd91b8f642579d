//! The on-disk record frame.
//!
//! ```text
//! u32 len   bytes after the crc field
//! u32 crc   CRC32C of those bytes
//! u64 offset
//! i64 timestamp
//! i32 key length (-1: no key), key bytes
//! u16 header count, each: u16 name length, name, u32 value length, value
//! u32 value length, value
//! ```
//! All integers little-endian. Every frame carries its own length and checksum, so a torn
//! or corrupted tail is detected record by record and cut at the last good one.
//!
//! Producers encode frames with the offset and crc left blank ([`encode_into`]); the writer
//! patches both in place ([`seal`]) once it assigns offsets, so the payload is copied once.

use crate::Record;

/// Bytes before the payload: `len` and `crc`.
pub(crate) const HEADER: usize = 8;
/// Smallest valid payload: offset, timestamp, key length, header count, value length.
const MIN_PAYLOAD: usize = 8 + 8 + 4 + 2 + 4;

/// Appends one frame for `record` to `buf` with offset and crc blank; returns its encoded size.
pub(crate) fn encode_into(buf: &mut Vec<u8>, record: &Record) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.extend_from_slice(&0u64.to_le_bytes());
    buf.extend_from_slice(&record.timestamp.to_le_bytes());
    match &record.key {
        Some(k) => {
            buf.extend_from_slice(&(k.len() as i32).to_le_bytes());
            buf.extend_from_slice(k);
        }
        None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    buf.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for (name, value) in &record.headers {
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value);
    }
    buf.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record.value);
    let len = (buf.len() - start - HEADER) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf.len() - start
}

/// Writes `offset` into the frame at `frame` and computes its checksum.
pub(crate) fn seal(frame: &mut [u8], offset: u64) {
    frame[HEADER..HEADER + 8].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32c::crc32c(&frame[HEADER..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The result of looking at the bytes where a frame should start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, valid frame of `size` bytes holding `offset`.
    Frame {
        offset: u64,
        timestamp: i64,
        size: usize,
    },
    /// Fewer bytes than the frame claims: read more, or it is a torn tail.
    Incomplete,
    /// Not a valid frame.
    Corrupt,
}

/// Checks the frame at the start of `bytes` without decoding its contents.
pub(crate) fn parse(bytes: &[u8], max_payload: usize) -> Parsed {
    if bytes.len() < HEADER {
        return Parsed::Incomplete;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if !(MIN_PAYLOAD..=max_payload).contains(&len) {
        return Parsed::Corrupt;
    }
    if bytes.len() < HEADER + len {
        return Parsed::Incomplete;
    }
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let payload = &bytes[HEADER..HEADER + len];
    if crc32c::crc32c(payload) != crc {
        return Parsed::Corrupt;
    }
    let offset = u64::from_le_bytes(payload[0..8].try_into().unwrap_or_default());
    let timestamp = i64::from_le_bytes(payload[8..16].try_into().unwrap_or_default());
    Parsed::Frame {
        offset,
        timestamp,
        size: HEADER + len,
    }
}

/// Decodes the record in a frame that [`parse`] accepted. `None` when its inner lengths are
/// inconsistent (which a matching checksum makes all but impossible).
pub(crate) fn decode(frame: &[u8]) -> Option<Record> {
    let mut r = Reader {
        bytes: frame,
        pos: HEADER + 8,
    };
    let timestamp = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let key_len = i32::from_le_bytes(r.take(4)?.try_into().ok()?);
    let key = if key_len < 0 {
        None
    } else {
        Some(r.take(key_len as usize)?.to_vec())
    };
    let count = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(r.take(n)?.to_vec()).ok()?;
        let v = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        headers.push((name, r.take(v)?.to_vec()));
    }
    let v = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    let value = r.take(v)?.to_vec();
    (r.pos == frame.len()).then_some(Record {
        key,
        value,
        headers,
        timestamp,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let rec = Record::new(Some("svc"), b"{\"a\":1}".to_vec(), 42).with_header("h", "v");
        let mut buf = Vec::new();
        let size = encode_into(&mut buf, &rec);
        seal(&mut buf, 7);
        assert_eq!(
            parse(&buf, 1 << 20),
            Parsed::Frame {
                offset: 7,
                timestamp: 42,
                size
            }
        );
        assert_eq!(decode(&buf), Some(rec));
        assert_eq!(parse(&buf[..size - 1], 1 << 20), Parsed::Incomplete);
        let mut bad = buf.clone();
        bad[size - 1] ^= 1;
        assert_eq!(parse(&bad, 1 << 20), Parsed::Corrupt);
        assert_eq!(parse(&[0u8; 16], 1 << 20), Parsed::Corrupt);
    }
}
