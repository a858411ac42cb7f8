//! The `pgoutput` logical decoding messages inside the replication stream's `XLogData`
//! (protocol version 1): relations, inserts, updates, deletes, truncates. Transaction
//! boundaries and logical messages arrive already parsed from `pgwire-replication`.
//! Column values are handed over as the bytes the server sent, undecoded: only a relation's
//! declaration says what they are.

use bytes::{Buf as _, Bytes};
use udl_core::{Error, ErrorKind, Result};

/// One decoded `pgoutput` message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A table's shape, sent before its first change in a session and after it changes.
    Relation(Relation),
    /// A row inserted.
    Insert {
        /// Relation id.
        relation: u32,
        /// The new row.
        new: Tuple,
    },
    /// A row updated.
    Update {
        /// Relation id.
        relation: u32,
        /// The old key (or whole old row with `REPLICA IDENTITY FULL`), when it changed.
        old: Option<Tuple>,
        /// The new row; unchanged TOAST values are [`Column::Unchanged`].
        new: Tuple,
    },
    /// A row deleted.
    Delete {
        /// Relation id.
        relation: u32,
        /// The old key (or whole old row with `REPLICA IDENTITY FULL`).
        old: Tuple,
    },
    /// Tables truncated.
    Truncate {
        /// Relation ids.
        relations: Vec<u32>,
    },
    /// Something the relay does not act on (types, origins, boundaries parsed elsewhere).
    Other(u8),
}

/// A table as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Relation id (the table's OID).
    pub id: u32,
    /// Schema.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<RelationColumn>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Whether it is part of the replica identity (the key).
    pub key: bool,
}

/// A row's columns, in the relation's order.
pub type Tuple = Vec<Column>;

/// One column value as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// SQL null.
    Null,
    /// A TOASTed value the change did not touch: not sent.
    Unchanged,
    /// The value in the type's text output form.
    Text(Bytes),
    /// The value in the type's binary send form.
    Binary(Bytes),
}

fn truncated() -> Error {
    Error::new(ErrorKind::DataCorruption, "a pgoutput message ended early")
}

/// Reads big-endian fields off a message, failing (never panicking) on a short one.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<()> {
        if self.0.remaining() < n {
            return Err(truncated());
        }
        Ok(())
    }
    fn u8(&mut self) -> Result<u8> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn u16(&mut self) -> Result<u16> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }
    fn u32(&mut self) -> Result<u32> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    fn bytes(&mut self, n: usize) -> Result<Bytes> {
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String> {
        let end = self.0.iter().position(|b| *b == 0).ok_or_else(truncated)?;
        let text = self.0.split_to(end);
        self.0.advance(1);
        String::from_utf8(text.to_vec())
            .map_err(|_| Error::new(ErrorKind::DataCorruption, "a pgoutput name is not UTF-8"))
    }

    fn tuple(&mut self) -> Result<Tuple> {
        let count = self.u16()?;
        let mut columns = Vec::with_capacity(count as usize);
        for _ in 0..count {
            columns.push(match self.u8()? {
                b'n' => Column::Null,
                b'u' => Column::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    Column::Text(self.bytes(len)?)
                }
                b'b' => {
                    let len = self.u32()? as usize;
                    Column::Binary(self.bytes(len)?)
                }
                other => return Err(unexpected("tuple column", other)),
            });
        }
        Ok(columns)
    }

    /// A tuple introduced by `tag`.
    fn tagged_tuple(&mut self, tag: u8) -> Result<Tuple> {
        let got = self.u8()?;
        if got != tag {
            return Err(unexpected("tuple tag", got));
        }
        self.tuple()
    }
}

fn unexpected(what: &str, byte: u8) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        format!("unexpected pgoutput {what} {:?}", byte as char),
    )
}

/// Decodes one `pgoutput` message.
pub fn decode(data: Bytes) -> Result<Message> {
    let mut r = Reader(data);
    let tag = r.u8()?;
    Ok(match tag {
        b'R' => {
            let id = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let _replica_identity = r.u8()?;
            let count = r.u16()?;
            let mut columns = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let flags = r.u8()?;
                let name = r.string()?;
                let type_oid = r.u32()?;
                let _type_modifier = r.u32()?;
                columns.push(RelationColumn {
                    name,
                    type_oid,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                id,
                namespace,
                name,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            Message::Insert {
                relation,
                new: r.tagged_tuple(b'N')?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let (old, new) = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    (Some(old), r.tagged_tuple(b'N')?)
                }
                b'N' => (None, r.tuple()?),
                other => return Err(unexpected("update part", other)),
            };
            Message::Update { relation, old, new }
        }
        b'D' => {
            let relation = r.u32()?;
            let old = match r.u8()? {
                b'K' | b'O' => r.tuple()?,
                other => return Err(unexpected("delete part", other)),
            };
            Message::Delete { relation, old }
        }
        b'T' => {
            let count = r.u32()?;
            let _options = r.u8()?;
            let mut relations = Vec::with_capacity(count.min(1024) as usize);
            for _ in 0..count {
                relations.push(r.u32()?);
            }
            Message::Truncate { relations }
        }
        other => Message::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(16384u32.to_be_bytes());
        m.extend(b"app\0notes\0");
        m.push(b'd');
        m.extend(2u16.to_be_bytes());
        m.push(1);
        m.extend(b"id\0");
        m.extend(2950u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        m.push(0);
        m.extend(b"body\0");
        m.extend(25u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        m
    }

    fn tuple_bytes(m: &mut Vec<u8>) {
        m.extend(3u16.to_be_bytes());
        m.push(b'b');
        m.extend(2u32.to_be_bytes());
        m.extend([7, 8]);
        m.push(b'n');
        m.push(b'u');
    }

    #[test]
    fn relation_names_its_columns_types_and_key() {
        let Message::Relation(rel) = decode(relation_bytes().into()).unwrap() else {
            panic!("not a relation");
        };
        assert_eq!(
            (rel.id, rel.namespace.as_str(), rel.name.as_str()),
            (16384, "app", "notes")
        );
        assert_eq!(rel.columns.len(), 2);
        assert!(rel.columns[0].key && !rel.columns[1].key);
        assert_eq!(
            (rel.columns[1].name.as_str(), rel.columns[1].type_oid),
            ("body", 25)
        );
    }

    #[test]
    fn insert_update_and_delete_carry_their_tuples() {
        let mut insert = vec![b'I'];
        insert.extend(5u32.to_be_bytes());
        insert.push(b'N');
        tuple_bytes(&mut insert);
        let expected = vec![
            Column::Binary(Bytes::from_static(&[7, 8])),
            Column::Null,
            Column::Unchanged,
        ];
        assert_eq!(
            decode(insert.into()).unwrap(),
            Message::Insert {
                relation: 5,
                new: expected.clone()
            }
        );

        let mut update = vec![b'U'];
        update.extend(5u32.to_be_bytes());
        update.push(b'K');
        tuple_bytes(&mut update);
        update.push(b'N');
        tuple_bytes(&mut update);
        assert_eq!(
            decode(update.into()).unwrap(),
            Message::Update {
                relation: 5,
                old: Some(expected.clone()),
                new: expected.clone()
            }
        );

        let mut delete = vec![b'D'];
        delete.extend(5u32.to_be_bytes());
        delete.push(b'K');
        tuple_bytes(&mut delete);
        assert_eq!(
            decode(delete.into()).unwrap(),
            Message::Delete {
                relation: 5,
                old: expected
            }
        );
    }

    #[test]
    fn a_short_or_garbled_message_is_an_error_not_a_panic() {
        let full = relation_bytes();
        for end in 1..full.len() {
            assert!(
                decode(Bytes::copy_from_slice(&full[..end])).is_err(),
                "{end}"
            );
        }
        let mut insert = vec![b'I'];
        insert.extend(5u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(1u16.to_be_bytes());
        insert.push(b'b');
        insert.extend(u32::MAX.to_be_bytes());
        assert!(decode(insert.into()).is_err());
        assert_eq!(
            decode(Bytes::from_static(b"Yxyz")).unwrap(),
            Message::Other(b'Y')
        );
    }
}
