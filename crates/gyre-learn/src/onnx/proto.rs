//! The protobuf wire format, writing only: varints, length-delimited fields and nested
//! messages, which is all an ONNX file needs (see `onnx`'s module doc for why not prost).

/// Wire types (protobuf encoding guide): varint and length-delimited are the two ONNX uses here.
const VARINT: u64 = 0;
const LEN: u64 = 2;

/// A message being written: fields are appended in the order the caller gives them.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    /// An `int32`/`int64`/enum field. Negative values take ten bytes, as protobuf writes them.
    pub(crate) fn int(&mut self, field: u32, v: i64) {
        self.tag(field, VARINT);
        self.varint(v as u64);
    }

    /// A repeated integer field, one tag per element (unpacked): ONNX declares its repeated
    /// integers in proto2 without `packed`, and every reader takes this form.
    pub(crate) fn ints(&mut self, field: u32, vs: &[i64]) {
        for &v in vs {
            self.int(field, v);
        }
    }

    /// A `bytes` field.
    pub(crate) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A `string` field (UTF-8 bytes).
    pub(crate) fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    /// A nested message, written by `f` and then length-prefixed.
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        f(&mut w);
        w.into_bytes()
    }

    /// The examples of the protobuf encoding guide: field 1 = 150 is `08 96 01`, field 2 =
    /// "testing" is `12 07 74 65 73 74 69 6e 67`, and a message holding field 1 = 150 as field 3
    /// is `1a 03 08 96 01`.
    #[test]
    fn encodes_the_guide_examples() {
        assert_eq!(written(|w| w.int(1, 150)), [0x08, 0x96, 0x01]);
        assert_eq!(
            written(|w| w.string(2, "testing")),
            [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
        assert_eq!(
            written(|w| w.message(3, |m| m.int(1, 150))),
            [0x1a, 0x03, 0x08, 0x96, 0x01]
        );
    }

    #[test]
    fn varints_use_seven_bits_a_byte() {
        assert_eq!(written(|w| w.int(1, 0)), [0x08, 0x00]);
        assert_eq!(written(|w| w.int(1, 127)), [0x08, 0x7f]);
        assert_eq!(written(|w| w.int(1, 128)), [0x08, 0x80, 0x01]);
        assert_eq!(written(|w| w.int(1, 300)), [0x08, 0xac, 0x02]);
        // -1 as int64: two's complement, ten bytes.
        assert_eq!(
            written(|w| w.int(1, -1)),
            [
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        assert_eq!(
            written(|w| w.int(1, i64::MAX)),
            [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
    }

    #[test]
    fn tags_hold_the_field_number_and_wire_type() {
        // Field 20 (AttributeProto.type) needs a two-byte tag: (20 << 3) | 0 = 160.
        assert_eq!(written(|w| w.int(20, 2)), [0xa0, 0x01, 0x02]);
        // Field 14, length-delimited: (14 << 3) | 2 = 114.
        assert_eq!(written(|w| w.bytes(14, &[])), [0x72, 0x00]);
    }

    #[test]
    fn repeated_ints_repeat_the_tag_and_long_fields_a_long_length() {
        assert_eq!(written(|w| w.ints(8, &[1, 2])), [0x40, 0x01, 0x40, 0x02]);
        let long = vec![7u8; 200];
        let b = written(|w| w.bytes(9, &long));
        assert_eq!(&b[..3], [0x4a, 0xc8, 0x01]);
        assert_eq!(b.len(), 3 + 200);
    }
}
