//! The peer's database under `--data` (redb): the result table, and the
//! unit records the peer holds in the ring, so both survive restarts.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use mersenne_common::ring::{Id, Record};
use mersenne_common::work::{ResultSet, UnitResult};

/// Why the database under `--data` could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database file is there but empty: see [`ResultDb::open`].
    #[error(
        "the result table {} is empty (0 bytes): it was truncated, or its creation was \
         interrupted; restore it from a backup, or remove it to start with an empty table",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// redb refused the file (corrupt, locked by another peer, not a
    /// database).
    #[error("cannot open result table {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: redb::DatabaseError,
    },
    /// The tables could not be created in a file that opened.
    #[error("cannot set up result table {}", path.display())]
    Setup {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: redb::Error,
    },
    /// A read or write of the open database failed.
    #[error("result table: {0}")]
    Storage(#[from] redb::Error),
    /// A stored row does not decode.
    #[error("a stored result row does not decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A row could not be encoded for writing.
    #[error("a result row does not encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// redb's error types each convert into its one `redb::Error`.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Storage(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

const RESULTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("results");

/// The on-disk result table: exponent → every result known for it.
pub struct ResultDb {
    db: Database,
}

impl ResultDb {
    /// Opens (or creates) `dir/results.redb`, creating `dir` if needed.
    /// Every error names the path it concerns.
    ///
    /// A database file of 0 bytes is refused: redb would quietly start a
    /// new, empty table in it, and a peer whose table was truncated (a full
    /// disk, a copy gone wrong) must not carry on as if it never had one.
    pub fn open(dir: &Path) -> Result<Self, DbError> {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("results.redb");
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == 0 => return Err(DbError::Empty { path }),
            _ => {}
        }
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(source) => return Err(DbError::Open { path, source }),
        };
        let init = || -> Result<(), redb::Error> {
            let tx = db.begin_write()?;
            tx.open_table(RESULTS)?;
            tx.open_table(RECORDS)?;
            tx.commit()?;
            Ok(())
        };
        init().map_err(|source| DbError::Setup { path, source })?;
        Ok(ResultDb { db })
    }

    /// Reads the whole table. Unsigned results (a table from before results
    /// were signed) are dropped with one warning that counts them: they name
    /// no key, so they could count toward no one's verification, and peers
    /// refuse them. Signed ones are not verified again: only results that
    /// verified are ever written here, and checking 100,000 signatures
    /// would add about 5 s to every start.
    pub fn load(&self) -> Result<ResultSet, DbError> {
        let mut set = ResultSet::new();
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RESULTS)?;
        let mut dropped = 0usize;
        for row in table.iter()? {
            let (_, v) = row?;
            let list: Vec<UnitResult> = rmp_serde::from_slice(v.value())?;
            for r in list {
                if r.signature.is_some() {
                    set.insert(r);
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "dropped unsigned results from the table on disk (written before results \
                 were signed); they are refused by every peer"
            );
        }
        Ok(set)
    }

    /// Writes the given rows (full result lists per exponent) in one
    /// transaction.
    pub fn write_rows<'a>(
        &self,
        rows: impl IntoIterator<Item = (u64, &'a [UnitResult])>,
    ) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(RESULTS)?;
            for (p, list) in rows {
                let bytes = rmp_serde::to_vec(list)?;
                table.insert(p, bytes.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The unit records this peer holds (owned and replicas), keyed by ring key.
/// A value is the record's version (8 bytes, little-endian) then its value.
const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("ring_records");

impl ResultDb {
    /// Reads every persisted ring record (rows that do not parse are
    /// skipped with a warning: a torn row must not stop the peer).
    pub fn load_records(&self) -> Result<Vec<Record>, DbError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let bytes = v.value();
            if bytes.len() < 8 {
                tracing::warn!(key = k.value(), "skipping a malformed persisted record");
                continue;
            }
            let (ver, value) = bytes.split_at(8);
            out.push(Record {
                key: Id(k.value()),
                version: u64::from_le_bytes(ver.try_into().expect("8 bytes")),
                value: value.to_vec(),
            });
        }
        Ok(out)
    }

    /// Upserts the given ring records in one transaction.
    pub fn write_records(&self, records: &[Record]) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(RECORDS)?;
            let mut buf = Vec::new();
            for r in records {
                buf.clear();
                buf.extend_from_slice(&r.version.to_le_bytes());
                buf.extend_from_slice(&r.value);
                table.insert(r.key.0, buf.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes the ring records with these keys in one transaction (a key
    /// with no row is not an error: the delete may be a retry).
    pub fn remove_records(&self, keys: &[Id]) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(RECORDS)?;
            for k in keys {
                table.remove(k.0)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: u64, version: u64, value: &[u8]) -> Record {
        Record {
            key: Id(key),
            version,
            value: value.to_vec(),
        }
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dbtest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_round_trip_through_a_reopened_database() {
        let dir = tmp("roundtrip");
        let recs = vec![
            rec(1, 1, b"one"),
            rec(u64::MAX, 7, &[0, 1, 2, 255]),
            rec(42, 3, b""),
        ];
        {
            let db = ResultDb::open(&dir).unwrap();
            assert!(db.load_records().unwrap().is_empty());
            db.write_records(&recs).unwrap();
            // A later write of the same key replaces the row.
            db.write_records(&[rec(42, 4, b"four")]).unwrap();
        }
        let db = ResultDb::open(&dir).unwrap();
        let mut got = db.load_records().unwrap();
        got.sort_by_key(|r| r.key);
        let mut want = vec![recs[0].clone(), rec(42, 4, b"four"), recs[1].clone()];
        want.sort_by_key(|r| r.key);
        assert_eq!(got, want);
        // The result table next to it is untouched.
        assert_eq!(db.load().unwrap().len(), 0);
        // A removed row is gone after reopening; removing it again, or a
        // key never written, is no error; the other rows stay.
        db.remove_records(&[Id(42)]).unwrap();
        db.remove_records(&[Id(42), Id(9)]).unwrap();
        drop(db);
        let db = ResultDb::open(&dir).unwrap();
        let mut got = db.load_records().unwrap();
        got.sort_by_key(|r| r.key);
        assert_eq!(got, vec![recs[0].clone(), recs[1].clone()]);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
