//! Legacy message sets (magic 0 and 1, before Kafka 0.11): each message carries its own
//! offset, size and CRC-32; compression wraps a whole inner message set in the value of
//! one wrapper message.

use super::{DecodeOptions, Record, TimestampType};
use crate::compression::{decompress_lz4, Compression};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use crate::wire::Decoder;
use bytes::{BufMut, Bytes, BytesMut};

/// One legacy message with its offset.
///
/// Decoded through [`MessageSet`], compressed wrappers are replaced by their inner
/// messages, so every message there is uncompressed and has its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The message's offset (for a wrapper: the offset of its last inner message; in a
    /// v1 wrapper's inner set: the offset relative to the first inner message).
    pub offset: i64,
    /// The format: 0 (no timestamp) or 1.
    pub magic: i8,
    /// Codec of the value: `None` except on a wrapper, whose value is a compressed
    /// message set. Zstd does not exist in these formats.
    pub compression: Compression,
    /// Where the timestamp came from (v1 only; always `CreateTime` in v0).
    pub timestamp_type: TimestampType,
    /// Milliseconds since the epoch (v1), or -1 (v0: no timestamp).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            offset: 0,
            magic: 1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            timestamp: -1,
            key: None,
            value: None,
        }
    }
}

impl From<Message> for Record {
    /// The message as a record without headers.
    fn from(m: Message) -> Record {
        Record {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: Vec::new(),
        }
    }
}

/// Offset and size, before the counted part of a message.
const LOG_OVERHEAD: usize = 12;

fn invalid(msg: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Invalid(msg))
}

fn encode_invalid(msg: String) -> EncodeError {
    EncodeError::new(EncodeErrorKind::Invalid(msg))
}

fn bytes_len(b: Option<&Bytes>) -> usize {
    4 + b.map_or(0, Bytes::len)
}

fn put_bytes(buf: &mut BytesMut, b: Option<&Bytes>) -> Result<(), EncodeError> {
    match b {
        None => buf.put_i32(-1),
        Some(b) => {
            let len = i32::try_from(b.len())
                .map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(b.len())))?;
            buf.put_i32(len);
            buf.put_slice(b);
        }
    }
    Ok(())
}

impl Message {
    /// The smallest message size (the counted part: CRC through value) of `magic`:
    /// 14 for v0, 22 for v1 (which adds the timestamp).
    pub const fn min_size(magic: i8) -> usize {
        if magic == 0 {
            14
        } else {
            22
        }
    }

    /// The attributes byte these fields make.
    pub fn attributes(&self) -> i8 {
        let mut a = self.compression.code() as i8;
        if self.magic >= 1 {
            a |= self.timestamp_type.attribute_bits() as i8;
        }
        a
    }

    /// The counted size: CRC through value.
    fn size(&self) -> usize {
        Self::min_size(self.magic) - 8
            + bytes_len(self.key.as_ref())
            + bytes_len(self.value.as_ref())
    }

    /// Bytes [`encode`](Message::encode) writes, offset and size included.
    pub fn encoded_len(&self) -> usize {
        LOG_OVERHEAD + self.size()
    }

    /// Appends the message as it is (offset, size, CRC-32 and fields) to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if !matches!(self.magic, 0 | 1) {
            return Err(encode_invalid(format!(
                "magic {} is not a legacy message",
                self.magic
            )));
        }
        if self.compression == Compression::Zstd {
            return Err(encode_invalid("zstd needs record batches (magic 2)".into()));
        }
        let size = self.size();
        let size =
            i32::try_from(size).map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(size)))?;
        let start = buf.len();
        buf.reserve(self.encoded_len());
        buf.put_i64(self.offset);
        buf.put_i32(size);
        buf.put_u32(0); // CRC, filled in below
        buf.put_i8(self.magic);
        buf.put_i8(self.attributes());
        if self.magic >= 1 {
            buf.put_i64(self.timestamp);
        }
        let fields =
            put_bytes(buf, self.key.as_ref()).and_then(|()| put_bytes(buf, self.value.as_ref()));
        if let Err(e) = fields {
            buf.truncate(start);
            return Err(e);
        }
        let crc = crc32fast::hash(&buf[start + 16..]);
        buf[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Reads one message as it is on the wire (a wrapper keeps its compressed value),
    /// checking its CRC-32 unless `options` turn that off.
    pub fn decode(d: &mut Decoder<'_>, options: &DecodeOptions) -> Result<Self, DecodeError> {
        let offset = d.i64().map_err(|e| e.within("offset"))?;
        let size = d.i32().map_err(|e| e.within("message_size"))?;
        if (size as i64) < Self::min_size(0) as i64 {
            return Err(
                invalid(format!("message size {size} is below the minimum")).within("message_size")
            );
        }
        let n = d
            .check_len(i64::from(size))
            .map_err(|e| e.within("message_size"))?;
        let mut m = d.sub(n)?;
        let stored = m.u32()?;
        if options.verify_crc {
            let computed = crc32fast::hash(m.rest());
            if computed != stored {
                return Err(
                    DecodeError::new(DecodeErrorKind::CrcMismatch { stored, computed })
                        .within("crc"),
                );
            }
        }
        let magic = m.i8()?;
        if !matches!(magic, 0 | 1) {
            return Err(invalid(format!("magic {magic} is not a legacy message")).within("magic"));
        }
        let attributes = m.i8()?;
        let compression = Compression::from_attributes(i16::from(attributes))
            .map_err(|e| e.within("attributes"))?;
        if compression == Compression::Zstd {
            return Err(invalid("zstd in a legacy message".into()).within("attributes"));
        }
        let (timestamp_type, timestamp) = if magic >= 1 {
            let t = TimestampType::from_attributes(i16::from(attributes));
            (t, m.i64().map_err(|e| e.within("timestamp"))?)
        } else {
            (TimestampType::CreateTime, -1)
        };
        let key = m.nullable_bytes(false).map_err(|e| e.within("key"))?;
        let value = m.nullable_bytes(false).map_err(|e| e.within("value"))?;
        if !m.is_empty() {
            return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(
                m.remaining(),
            )));
        }
        Ok(Message {
            offset,
            magic,
            compression,
            timestamp_type,
            timestamp,
            key,
            value,
        })
    }
}

/// A legacy message set: messages one after another, with no count in front.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageSet {
    /// The messages (decoded: uncompressed, with absolute offsets).
    pub messages: Vec<Message>,
}

impl MessageSet {
    /// Reads a whole message set, replacing compressed wrappers by their inner messages
    /// (offsets made absolute, log-append time applied). The input must hold complete
    /// messages only; for fetched data that may end in a partial one, use
    /// [`decode_record_sets`](super::decode_record_sets).
    pub fn decode(bytes: &Bytes, options: &DecodeOptions) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut set = MessageSet::default();
        while !d.is_empty() {
            let position = d.position();
            set.decode_entry(&mut d, options)
                .map_err(|e| e.within(format!("message at byte {position}")))?;
        }
        Ok(set)
    }

    /// Reads one top-level message onto the set, expanding a wrapper.
    pub(crate) fn decode_entry(
        &mut self,
        d: &mut Decoder<'_>,
        options: &DecodeOptions,
    ) -> Result<(), DecodeError> {
        let message = Message::decode(d, options)?;
        if message.compression == Compression::None {
            self.messages.push(message);
            return Ok(());
        }
        self.expand(&message, options)
            .map_err(|e| e.within("value"))
    }

    fn expand(&mut self, wrapper: &Message, options: &DecodeOptions) -> Result<(), DecodeError> {
        let Some(value) = &wrapper.value else {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedNull));
        };
        let max = options.max_decompressed_size;
        let data = if wrapper.compression == Compression::Lz4 && wrapper.magic == 0 {
            // Kafka's first LZ4 writer got the frame header checksum wrong.
            decompress_lz4(value, max, true)?
        } else {
            wrapper.compression.decompress(value, max)?
        };
        let mut d = Decoder::new(&data);
        let start = self.messages.len();
        while !d.is_empty() {
            let i = self.messages.len() - start;
            let inner = Message::decode(&mut d, options).map_err(|e| e.within(format!("[{i}]")))?;
            if inner.compression != Compression::None {
                return Err(
                    invalid("compressed message inside a compressed message".into())
                        .within(format!("[{i}]")),
                );
            }
            if inner.magic != wrapper.magic {
                return Err(invalid(format!(
                    "inner magic {} differs from the wrapper's {}",
                    inner.magic, wrapper.magic
                ))
                .within(format!("[{i}]")));
            }
            self.messages.push(inner);
        }
        let inner = &mut self.messages[start..];
        let Some(last) = inner.last() else {
            return Err(invalid("compressed message holds no messages".into()));
        };
        if wrapper.magic >= 1 {
            // Inner offsets are relative; the wrapper holds the last one's absolute offset.
            let base = wrapper.offset.wrapping_sub(last.offset);
            let log_append = wrapper.timestamp_type == TimestampType::LogAppendTime;
            for m in inner {
                m.offset = base.wrapping_add(m.offset);
                if log_append {
                    m.timestamp_type = TimestampType::LogAppendTime;
                    m.timestamp = wrapper.timestamp;
                }
            }
        }
        Ok(())
    }

    /// Bytes [`encode`](MessageSet::encode) writes without compression.
    pub fn encoded_len(&self) -> usize {
        self.messages.iter().map(Message::encoded_len).sum()
    }

    /// Appends the set to `buf`.
    ///
    /// With `Compression::None` each message is written as it is. Otherwise all of them
    /// (which must share one magic and be uncompressed themselves) go into one wrapper
    /// message, as the producers of those formats wrote it: v1 inner offsets relative to
    /// the first message, v0 inner offsets as they are, the wrapper at the last offset
    /// with (v1) the largest timestamp. An empty set writes nothing. On error `buf` is
    /// left as it was.
    pub fn encode(&self, buf: &mut BytesMut, compression: Compression) -> Result<(), EncodeError> {
        let start = buf.len();
        let result = if compression == Compression::None {
            buf.reserve(self.encoded_len());
            self.messages
                .iter()
                .enumerate()
                .try_for_each(|(i, m)| m.encode(buf).map_err(|e| e.within(format!("[{i}]"))))
        } else {
            self.encode_wrapped(buf, compression)
        };
        if result.is_err() {
            buf.truncate(start);
        }
        result.map_err(|e| e.within("message set"))
    }

    fn encode_wrapped(
        &self,
        buf: &mut BytesMut,
        compression: Compression,
    ) -> Result<(), EncodeError> {
        let (Some(first), Some(last)) = (self.messages.first(), self.messages.last()) else {
            return Ok(());
        };
        let magic = first.magic;
        let mut inner = BytesMut::with_capacity(self.encoded_len());
        for (i, m) in self.messages.iter().enumerate() {
            let within = |e: EncodeError| e.within(format!("[{i}]"));
            if m.magic != magic {
                return Err(within(encode_invalid(format!(
                    "magic {} differs from the first message's {magic}",
                    m.magic
                ))));
            }
            if m.compression != Compression::None {
                return Err(within(encode_invalid(
                    "a compressed message cannot be wrapped".into(),
                )));
            }
            let offset = if magic >= 1 {
                m.offset.wrapping_sub(first.offset)
            } else {
                m.offset
            };
            let m = Message {
                offset,
                ..m.clone()
            };
            m.encode(&mut inner).map_err(within)?;
        }
        let mut value = BytesMut::new();
        compression.compress(&inner, &mut value)?;
        let wrapper = Message {
            offset: last.offset,
            magic,
            compression,
            timestamp_type: first.timestamp_type,
            timestamp: if magic >= 1 {
                self.messages
                    .iter()
                    .map(|m| m.timestamp)
                    .max()
                    .unwrap_or(-1)
            } else {
                -1
            },
            key: None,
            value: Some(value.freeze()),
        };
        wrapper.encode(buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(set: &MessageSet, c: Compression) -> Bytes {
        let mut buf = BytesMut::new();
        set.encode(&mut buf, c).unwrap();
        buf.freeze()
    }

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn hand_built_v1_message_matches_the_encoder() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&7i64.to_be_bytes()); // offset
        raw.extend_from_slice(&0i32.to_be_bytes()); // size, patched
        raw.extend_from_slice(&0u32.to_be_bytes()); // crc, patched
        raw.push(1); // magic
        raw.push(0); // attributes
        raw.extend_from_slice(&1234i64.to_be_bytes()); // timestamp
        raw.extend_from_slice(&(-1i32).to_be_bytes()); // key: null
        raw.extend_from_slice(&3i32.to_be_bytes()); // value
        raw.extend_from_slice(b"abc");
        let size = (raw.len() - 12) as i32;
        raw[8..12].copy_from_slice(&size.to_be_bytes());
        let crc = crc32fast::hash(&raw[16..]);
        raw[12..16].copy_from_slice(&crc.to_be_bytes());
        let bytes = Bytes::from(raw);
        let set = MessageSet::decode(&bytes, &DecodeOptions::default()).unwrap();
        let m = &set.messages[0];
        assert_eq!((m.offset, m.timestamp, m.key.clone()), (7, 1234, None));
        assert_eq!(m.value.as_deref(), Some(&b"abc"[..]));
        assert_eq!(encode(&set, Compression::None), bytes);

        let mut bad = bytes.to_vec();
        bad[30] ^= 1;
        let err = MessageSet::decode(&Bytes::from(bad), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::CrcMismatch { .. }));
    }

    fn messages(magic: i8, n: usize, first_offset: i64) -> MessageSet {
        MessageSet {
            messages: (0..n)
                .map(|i| Message {
                    offset: first_offset + 2 * i as i64,
                    magic,
                    timestamp: if magic == 0 { -1 } else { 50 + i as i64 },
                    key: (i % 2 == 0).then(|| Bytes::from(format!("key{i}"))),
                    value: Some(Bytes::from(vec![i as u8; i * 10])),
                    ..Message::default()
                })
                .collect(),
        }
    }

    #[test]
    fn v1_wrapper_has_relative_inner_offsets_and_the_last_offset() {
        let set = messages(1, 4, 1000);
        let bytes = encode(&set, Compression::Gzip);
        let wrapper =
            Message::decode(&mut Decoder::new(&bytes), &DecodeOptions::default()).unwrap();
        assert_eq!(wrapper.offset, 1006);
        assert_eq!(wrapper.timestamp, 53);
        assert_eq!(wrapper.compression, Compression::Gzip);
        let inner = Compression::Gzip
            .decompress(wrapper.value.as_ref().unwrap(), 1 << 20)
            .unwrap();
        let inner = MessageSet::decode(&inner, &DecodeOptions::default()).unwrap();
        let rel: Vec<i64> = inner.messages.iter().map(|m| m.offset).collect();
        assert_eq!(rel, [0, 2, 4, 6]);
        assert_eq!(
            MessageSet::decode(&bytes, &DecodeOptions::default()).unwrap(),
            set
        );
    }

    #[test]
    fn v1_log_append_time_wrapper_stamps_inner_messages() {
        let set = messages(1, 3, 0);
        let mut raw = encode(&set, Compression::Snappy).to_vec();
        // Set the wrapper's timestamp type bit and its timestamp, then fix the CRC.
        raw[17] |= 0x08;
        raw[18..26].copy_from_slice(&999i64.to_be_bytes());
        let crc = crc32fast::hash(&raw[16..]);
        raw[12..16].copy_from_slice(&crc.to_be_bytes());
        let back = MessageSet::decode(&Bytes::from(raw), &DecodeOptions::default()).unwrap();
        for m in &back.messages {
            assert_eq!(
                (m.timestamp, m.timestamp_type),
                (999, TimestampType::LogAppendTime)
            );
        }
    }

    #[test]
    fn v0_lz4_with_the_broken_header_checksum_decodes() {
        let set = messages(0, 3, 10);
        let mut inner = BytesMut::new();
        set.encode(&mut inner, Compression::None).unwrap();
        let mut value = BytesMut::new();
        Compression::Lz4.compress(&inner, &mut value).unwrap();
        // The old checksum covered the magic number too.
        value[6] = (twox_hash::XxHash32::oneshot(0, &value[..6]) >> 8) as u8;
        let wrapper = MessageSet {
            messages: vec![Message {
                offset: 14,
                magic: 0,
                compression: Compression::Lz4,
                value: Some(value.freeze()),
                ..Message::default()
            }],
        };
        let bytes = encode(&wrapper, Compression::None);
        assert_eq!(
            MessageSet::decode(&bytes, &DecodeOptions::default()).unwrap(),
            set
        );
        // The same frame in a v1 wrapper must carry a correct checksum.
        let mut v1 = wrapper.clone();
        v1.messages[0].magic = 1;
        let bytes = encode(&v1, Compression::None);
        assert!(MessageSet::decode(&bytes, &DecodeOptions::default()).is_err());
    }

    #[test]
    fn nested_compression_and_magic_mixing_are_rejected() {
        let inner = encode(&messages(1, 2, 0), Compression::Gzip);
        let nested = MessageSet {
            messages: vec![Message {
                offset: 0,
                compression: Compression::Gzip,
                value: Some(inner),
                ..Message::default()
            }],
        };
        let mut value = BytesMut::new();
        Compression::Gzip
            .compress(&encode(&nested, Compression::None), &mut value)
            .unwrap();
        let outer = MessageSet {
            messages: vec![Message {
                offset: 0,
                compression: Compression::Gzip,
                value: Some(value.freeze()),
                ..Message::default()
            }],
        };
        let err = MessageSet::decode(
            &encode(&outer, Compression::None),
            &DecodeOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("compressed message inside"),
            "{err}"
        );

        let mut mixed = messages(1, 2, 0);
        mixed.messages[1].magic = 0;
        assert!(mixed
            .encode(&mut BytesMut::new(), Compression::Gzip)
            .is_err());
        assert!(messages(1, 1, 0)
            .encode(&mut BytesMut::new(), Compression::Zstd)
            .is_err());
    }

    #[test]
    fn wrapper_bomb_is_stopped() {
        let set = MessageSet {
            messages: vec![Message {
                value: Some(Bytes::from(vec![0u8; 1 << 20])),
                ..Message::default()
            }],
        };
        let bytes = encode(&set, Compression::Gzip);
        let opts = DecodeOptions::default().with_max_decompressed_size(1 << 19);
        let err = MessageSet::decode(&bytes, &opts).unwrap_err();
        assert!(
            matches!(err.kind(), DecodeErrorKind::Compression(_)),
            "{err}"
        );
    }

    #[test]
    fn hostile_sizes_are_errors() {
        let bytes = encode(&messages(1, 1, 0), Compression::None);
        for size in [-1i32, 3, i32::MAX] {
            let mut raw = bytes.to_vec();
            raw[8..12].copy_from_slice(&size.to_be_bytes());
            assert!(MessageSet::decode(&Bytes::from(raw), &DecodeOptions::default()).is_err());
        }
        let mut raw = bytes.to_vec();
        raw[26..30].copy_from_slice(&i32::MAX.to_be_bytes()); // key length
        let err = MessageSet::decode(
            &Bytes::from(raw),
            &DecodeOptions::default().with_verify_crc(false),
        )
        .unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
    }

    fn arb_set() -> impl Strategy<Value = (MessageSet, Compression)> {
        let msg = (
            0i64..5,
            0i64..1_000_000,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60)),
        );
        (
            0i8..2,
            proptest::collection::vec(msg, 1..12),
            0u8..4,
            any::<i64>().prop_map(|o| o >> 4),
        )
            .prop_map(|(magic, msgs, codec, base)| {
                let mut offset = base;
                let messages = msgs
                    .into_iter()
                    .map(|(gap, ts, key, value)| {
                        offset += gap;
                        Message {
                            offset,
                            magic,
                            timestamp: if magic == 0 { -1 } else { ts },
                            key: key.map(Bytes::from),
                            value: value.map(Bytes::from),
                            ..Message::default()
                        }
                    })
                    .collect();
                (
                    MessageSet { messages },
                    Compression::from_code(codec).unwrap(),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn sets_round_trip((set, c) in arb_set()) {
            let bytes = encode(&set, c);
            prop_assert_eq!(MessageSet::decode(&bytes, &DecodeOptions::default()).unwrap(), set);
        }

        #[test]
        fn damaged_sets_never_panic(
            (set, c) in arb_set(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut raw = encode(&set, c).to_vec();
            for (at, x) in flips {
                let i = at.index(raw.len());
                raw[i] ^= x;
            }
            let opts = DecodeOptions::default().with_verify_crc(false).with_max_decompressed_size(1 << 16);
            let _ = MessageSet::decode(&Bytes::from(raw), &opts);
        }
    }
}
