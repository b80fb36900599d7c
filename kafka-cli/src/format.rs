//! Output formats of `kafka consume -f`, as kcat's: `%t` topic, `%p` partition, `%o`
//! offset, `%k` key, `%K` key length, `%s` value, `%S` value length, `%T` timestamp
//! (ms), `%h` headers (`k=v,k=v`), `%%` a percent sign; `\n`, `\t`, `\r`, `\\`
//! escapes. A null key or value prints as nothing, its length as -1.

use kafka_consumer::Message;

/// A parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    KeyLen,
    Value,
    ValueLen,
    Timestamp,
    Headers,
}

impl Format {
    /// Parses a format string; an unknown `%x` is an error naming it.
    pub(crate) fn parse(s: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = s.chars().peekable();
        let flush = |text: &mut Vec<u8>, pieces: &mut Vec<Piece>| {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(text)));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let piece = match chars.next() {
                        Some('t') => Piece::Topic,
                        Some('p') => Piece::Partition,
                        Some('o') => Piece::Offset,
                        Some('k') => Piece::Key,
                        Some('K') => Piece::KeyLen,
                        Some('s') => Piece::Value,
                        Some('S') => Piece::ValueLen,
                        Some('T') => Piece::Timestamp,
                        Some('h') => Piece::Headers,
                        Some('%') => {
                            text.push(b'%');
                            continue;
                        }
                        Some(other) => {
                            return Err(format!(
                            "format {s:?}: unknown %{other} (known: %t %p %o %k %K %s %S %T %h %%)"
                        ))
                        }
                        None => return Err(format!("format {s:?} ends with a lone %")),
                    };
                    flush(&mut text, &mut pieces);
                    pieces.push(piece);
                }
                '\\' => match chars.next() {
                    Some('n') => text.push(b'\n'),
                    Some('t') => text.push(b'\t'),
                    Some('r') => text.push(b'\r'),
                    Some('\\') => text.push(b'\\'),
                    Some(other) => {
                        text.push(b'\\');
                        let mut b = [0u8; 4];
                        text.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                    }
                    None => text.push(b'\\'),
                },
                other => {
                    let mut b = [0u8; 4];
                    text.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        flush(&mut text, &mut pieces);
        Ok(Format(pieces))
    }

    /// Writes a message in this format.
    pub(crate) fn write(&self, out: &mut Vec<u8>, m: &Message) {
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Topic => out.extend_from_slice(m.topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(m.partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(m.offset.to_string().as_bytes()),
                Piece::Key => out.extend_from_slice(m.key.as_deref().unwrap_or_default()),
                Piece::KeyLen => out.extend_from_slice(len(&m.key).to_string().as_bytes()),
                Piece::Value => out.extend_from_slice(m.value.as_deref().unwrap_or_default()),
                Piece::ValueLen => out.extend_from_slice(len(&m.value).to_string().as_bytes()),
                Piece::Timestamp => out.extend_from_slice(m.timestamp.to_string().as_bytes()),
                Piece::Headers => {
                    for (i, h) in m.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(h.key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::{Record, RecordHeader};

    #[test]
    fn formats_as_kcat_does() {
        let m = Message::from_record(
            "orders",
            3,
            Record {
                offset: 42,
                timestamp: 1700,
                key: Some(Bytes::from_static(b"k1")),
                value: None,
                headers: vec![RecordHeader {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                }],
            },
        );
        let f = Format::parse("%t/%p@%o %k=%s (%K,%S) %T [%h] 100%%\\n").unwrap();
        let mut out = Vec::new();
        f.write(&mut out, &m);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "orders/3@42 k1= (2,-1) 1700 [h=v] 100%\n"
        );
        assert!(Format::parse("%x").unwrap_err().contains("%x"));
        assert!(Format::parse("50%").is_err());
    }
}
