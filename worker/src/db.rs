//! The result table on disk: redb under `--data`, so it survives restarts.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use mersenne_common::work::{ResultSet, UnitResult};

const RESULTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("results");

/// The on-disk result table: exponent → every result known for it.
pub struct ResultDb {
    db: Database,
}

impl ResultDb {
    /// Opens (or creates) `dir/results.redb`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("results.redb");
        let db = Database::create(&path)
            .map_err(|e| anyhow::anyhow!("cannot open result table {}: {e}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(RESULTS)?;
        tx.commit()?;
        Ok(ResultDb { db })
    }

    /// Reads the whole table.
    pub fn load(&self) -> anyhow::Result<ResultSet> {
        let mut set = ResultSet::new();
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RESULTS)?;
        for row in table.iter()? {
            let (_, v) = row?;
            let list: Vec<UnitResult> = rmp_serde::from_slice(v.value())?;
            for r in list {
                set.insert(r);
            }
        }
        Ok(set)
    }

    /// Writes the given rows (full result lists per exponent) in one
    /// transaction.
    pub fn write_rows<'a>(
        &self,
        rows: impl IntoIterator<Item = (u64, &'a [UnitResult])>,
    ) -> anyhow::Result<()> {
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
