//! Control records: the records of a control batch (`is_control`), which mark the end
//! of a transaction (and, in KRaft logs, other events) instead of carrying data. The key
//! is a version and a type; the value of an abort or commit marker is an
//! [`EndTransactionMarker`].

use super::Record;
use crate::error::{DecodeError, DecodeErrorKind};
use bytes::{BufMut, Bytes, BytesMut};

/// The type of a control record, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The transaction was aborted (0): its records must be skipped by
    /// `read_committed` consumers.
    Abort,
    /// The transaction was committed (1).
    Commit,
    /// A KRaft leader change (2).
    LeaderChange,
    /// Start of a KRaft snapshot (3).
    SnapshotHeader,
    /// End of a KRaft snapshot (4).
    SnapshotFooter,
    /// A KRaft version record (5).
    KraftVersion,
    /// A KRaft voters record (6).
    KraftVoters,
    /// A type this codec does not know.
    Unknown(i16),
}

impl ControlRecordType {
    /// The type's code.
    pub const fn code(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::LeaderChange => 2,
            ControlRecordType::SnapshotHeader => 3,
            ControlRecordType::SnapshotFooter => 4,
            ControlRecordType::KraftVersion => 5,
            ControlRecordType::KraftVoters => 6,
            ControlRecordType::Unknown(code) => code,
        }
    }

    /// The type with this code.
    pub const fn from_code(code: i16) -> Self {
        match code {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            2 => ControlRecordType::LeaderChange,
            3 => ControlRecordType::SnapshotHeader,
            4 => ControlRecordType::SnapshotFooter,
            5 => ControlRecordType::KraftVersion,
            6 => ControlRecordType::KraftVoters,
            other => ControlRecordType::Unknown(other),
        }
    }
}

/// The key of a control record: `version: int16, type: int16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// Version of the key schema (0).
    pub version: i16,
    /// What the record marks.
    pub kind: ControlRecordType,
}

fn short(needed: usize, remaining: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnexpectedEof { needed, remaining })
}

impl ControlRecord {
    /// An abort marker key.
    pub const ABORT: ControlRecord = ControlRecord {
        version: 0,
        kind: ControlRecordType::Abort,
    };
    /// A commit marker key.
    pub const COMMIT: ControlRecord = ControlRecord {
        version: 0,
        kind: ControlRecordType::Commit,
    };

    /// Reads a control record key. Bytes after the type (from a newer version) are
    /// ignored, as the Java client does; a negative version is an error.
    pub fn decode(key: &[u8]) -> Result<Self, DecodeError> {
        let (Some(v), Some(t)) = (key.get(0..2), key.get(2..4)) else {
            return Err(short(4, key.len()).within("control record key"));
        };
        let version = i16::from_be_bytes([v[0], v[1]]);
        if version < 0 {
            return Err(DecodeError::new(DecodeErrorKind::Invalid(format!(
                "negative control record version {version}"
            )))
            .within("control record key"));
        }
        let kind = ControlRecordType::from_code(i16::from_be_bytes([t[0], t[1]]));
        Ok(ControlRecord { version, kind })
    }

    /// Reads the control record key of `record` (a record of a control batch).
    pub fn from_record(record: &Record) -> Result<Self, DecodeError> {
        match &record.key {
            Some(key) => Self::decode(key),
            None => {
                Err(DecodeError::new(DecodeErrorKind::UnexpectedNull).within("control record key"))
            }
        }
    }

    /// The key's four bytes.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(4);
        buf.put_i16(self.version);
        buf.put_i16(self.kind.code());
        buf.freeze()
    }
}

/// The value of an abort or commit control record: `version: int16,
/// coordinator_epoch: int32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTransactionMarker {
    /// Version of the value schema (0).
    pub version: i16,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// Reads a marker value; bytes after the epoch (from a newer version) are ignored.
    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let (Some(v), Some(e)) = (value.get(0..2), value.get(2..6)) else {
            return Err(short(6, value.len()).within("end transaction marker"));
        };
        Ok(EndTransactionMarker {
            version: i16::from_be_bytes([v[0], v[1]]),
            coordinator_epoch: i32::from_be_bytes([e[0], e[1], e[2], e[3]]),
        })
    }

    /// The value's six bytes.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(6);
        buf.put_i16(self.version);
        buf.put_i32(self.coordinator_epoch);
        buf.freeze()
    }

    /// A control [`Record`] at `offset` marking the end of a transaction: `commit`
    /// true for a commit marker, false for an abort.
    pub fn into_record(self, commit: bool, offset: i64, timestamp: i64) -> Record {
        let key = if commit {
            ControlRecord::COMMIT
        } else {
            ControlRecord::ABORT
        };
        Record {
            offset,
            timestamp,
            key: Some(key.encode()),
            value: Some(self.encode()),
            headers: Vec::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::{decode_record_sets, DecodeOptions, RecordBatch, RecordSet};

    #[test]
    fn commit_marker_batch_round_trips() {
        let marker = EndTransactionMarker {
            version: 0,
            coordinator_epoch: 17,
        };
        let mut batch = RecordBatch::new(40, vec![marker.into_record(true, 40, 123)]);
        batch.is_control = true;
        batch.is_transactional = true;
        batch.producer_id = 9;
        let mut buf = BytesMut::new();
        batch.encode(&mut buf).unwrap();
        let sets = decode_record_sets(&buf.freeze(), &DecodeOptions::default()).unwrap();
        let RecordSet::Batch(b) = &sets.sets[0] else {
            panic!()
        };
        assert!(b.is_control);
        let r = &b.records[0];
        assert_eq!(
            ControlRecord::from_record(r).unwrap(),
            ControlRecord::COMMIT
        );
        let value = EndTransactionMarker::decode(r.value.as_ref().unwrap()).unwrap();
        assert_eq!(value, marker);
    }

    #[test]
    fn keys_decode_by_type_and_reject_short_input() {
        assert_eq!(
            ControlRecord::decode(&[0, 0, 0, 0]).unwrap().kind,
            ControlRecordType::Abort
        );
        assert_eq!(
            ControlRecord::decode(&[0, 1, 0, 9, 0xaa]).unwrap(),
            ControlRecord {
                version: 1,
                kind: ControlRecordType::Unknown(9)
            }
        );
        assert!(ControlRecord::decode(&[0, 0, 0]).is_err());
        assert!(ControlRecord::decode(&[0xff, 0xff, 0, 0]).is_err());
        assert!(EndTransactionMarker::decode(&[0, 0, 0, 0, 1]).is_err());
        assert!(ControlRecord::from_record(&Record::default()).is_err());
        for code in -1..8 {
            assert_eq!(ControlRecordType::from_code(code).code(), code);
        }
    }
}
