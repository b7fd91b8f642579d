//! Telling the two formats apart from a value's first bytes, and the Confluent framing:
//! magic byte `0`, 4-byte big-endian schema id, then the Avro binary datum.

use crate::CodecError;

/// First byte of a Confluent-framed value. JSON text never starts with it.
pub(crate) const MAGIC: u8 = 0;
/// Magic byte plus schema id.
pub(crate) const HEADER_LEN: usize = 5;

/// A value with its format recognised.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed<'a> {
    /// JSON text.
    Json(&'a [u8]),
    /// An Avro datum written with schema `id`.
    Avro {
        /// The writer schema id.
        id: u32,
        /// The datum after the header.
        datum: &'a [u8],
    },
}

/// Recognises `value`'s format from its first byte.
pub(crate) fn frame(value: &[u8]) -> Result<Framed<'_>, CodecError> {
    match value.first() {
        None => Err(CodecError::Malformed {
            offset: 0,
            reason: "empty value".into(),
        }),
        Some(&MAGIC) => match value.split_first_chunk::<HEADER_LEN>() {
            Some((&[_, a, b, c, d], datum)) => Ok(Framed::Avro {
                id: u32::from_be_bytes([a, b, c, d]),
                datum,
            }),
            None => Err(CodecError::Malformed {
                offset: value.len(),
                reason: format!(
                    "an Avro value starts with a {HEADER_LEN}-byte header (magic byte 0, \
                     4-byte schema id) but the value has only {} bytes",
                    value.len()
                ),
            }),
        },
        // JSON objects, possibly after JSON whitespace; serde_json judges the rest.
        Some(b'{' | b' ' | b'\t' | b'\n' | b'\r') => Ok(Framed::Json(value)),
        Some(&other) => Err(CodecError::Malformed {
            offset: 0,
            reason: format!(
                "first byte 0x{other:02x} is neither the Avro magic byte 0x00 nor the start \
                 of a JSON object"
            ),
        }),
    }
}

/// The writer schema id of a Confluent-framed value; `None` for anything else.
pub(crate) fn schema_id(value: &[u8]) -> Option<u32> {
    match frame(value) {
        Ok(Framed::Avro { id, .. }) => Some(id),
        _ => None,
    }
}

/// Appends the header for schema `id`.
pub(crate) fn write_header(out: &mut Vec<u8>, id: u32) {
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_the_schema_id() {
        let mut out = Vec::new();
        write_header(&mut out, 0x0102_0304);
        out.push(42);
        assert_eq!(out, [0, 1, 2, 3, 4, 42]);
        assert_eq!(
            frame(&out).ok(),
            Some(Framed::Avro {
                id: 0x0102_0304,
                datum: &[42]
            })
        );
    }

    #[test]
    fn json_is_recognised_after_whitespace() {
        for value in [&b"{}"[..], b" {}", b"\n\t{}", b"\r\n{}"] {
            assert_eq!(frame(value).ok(), Some(Framed::Json(value)));
        }
    }

    #[test]
    fn short_header_names_the_missing_bytes() {
        let err = frame(&[0, 0, 1]).unwrap_err();
        assert!(
            matches!(err, CodecError::Malformed { offset: 3, ref reason } if reason.contains("only 3 bytes")),
            "{err}"
        );
    }
}
