// SPDX-License-Identifier: Apache-2.0
//! The node's catalog: deployed functions, registered kernels, triggers and the async event
//! queue, in one redb
//! database (`catalog.redb` in the data directory), values as JSON.

use std::path::Path;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Function records by name.
pub(crate) const FUNCTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("functions");
/// Trigger records by id.
pub(crate) const TRIGGERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("triggers");
/// Queued events by id.
pub(crate) const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
/// Dead-lettered events by id.
pub(crate) const DEAD: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("dead_letters");
/// Registered (user) kernels by name.
pub(crate) const USER_KERNELS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("user_kernels");
/// Registered (user) eBPF programs by name.
pub(crate) const USER_EBPF: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("user_ebpf");
/// Id counters by name.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");

/// Why the catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database failed.
    #[error("catalog {operation} failed: {message}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The database's message.
        message: String,
    },
    /// A stored record does not decode.
    #[error("catalog record in {table} does not decode: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The decoder's message.
        message: String,
    },
}

pub(crate) fn db_err<E: std::fmt::Display>(operation: &'static str) -> impl Fn(E) -> CatalogError {
    move |e| CatalogError::Database {
        operation,
        message: e.to_string(),
    }
}

/// The catalog database.
#[derive(Debug)]
pub struct Catalog {
    db: Database,
}

impl Catalog {
    /// Opens (or creates) `catalog.redb` in `dir` and its tables.
    pub fn open(dir: &Path) -> Result<Self, CatalogError> {
        std::fs::create_dir_all(dir).map_err(db_err("create catalog directory"))?;
        let db = Database::create(dir.join("catalog.redb")).map_err(db_err("open"))?;
        let txn = db.begin_write().map_err(db_err("begin"))?;
        txn.open_table(FUNCTIONS).map_err(db_err("create tables"))?;
        txn.open_table(TRIGGERS).map_err(db_err("create tables"))?;
        txn.open_table(EVENTS).map_err(db_err("create tables"))?;
        txn.open_table(DEAD).map_err(db_err("create tables"))?;
        txn.open_table(COUNTERS).map_err(db_err("create tables"))?;
        txn.open_table(USER_KERNELS)
            .map_err(db_err("create tables"))?;
        txn.open_table(USER_EBPF).map_err(db_err("create tables"))?;
        txn.commit().map_err(db_err("commit"))?;
        Ok(Self { db })
    }

    /// Runs `f` in a write transaction and commits durably (fsync) unless `durable` is false.
    /// A non-durable commit becomes durable with the next durable one; losing it in a crash
    /// must be harmless to the caller.
    pub(crate) fn write<R>(
        &self,
        durable: bool,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let mut txn = self.db.begin_write().map_err(db_err("begin"))?;
        if !durable {
            txn.set_durability(Durability::None);
        }
        let out = f(&txn)?;
        txn.commit().map_err(db_err("commit"))?;
        Ok(out)
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        f(&txn)
    }
}

/// Takes the next id from the named counter (ids start at 1).
pub(crate) fn next_id(txn: &redb::WriteTransaction, counter: &str) -> Result<u64, CatalogError> {
    let mut table = txn.open_table(COUNTERS).map_err(db_err("open counters"))?;
    let next = table
        .get(counter)
        .map_err(db_err("read counter"))?
        .map_or(1, |v| v.value() + 1);
    table
        .insert(counter, next)
        .map_err(db_err("write counter"))?;
    Ok(next)
}

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value)
        .expect("catalog records serialize: plain data without maps keyed by non-strings")
}

/// Decodes a record from `table`.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, CatalogError> {
    serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt {
        table,
        message: e.to_string(),
    })
}

/// Every record of a `u64`-keyed table, in id order.
pub(crate) fn all_by_id<T: DeserializeOwned>(
    table: &impl ReadableTable<u64, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>, CatalogError> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err("scan"))? {
        let (_, value) = entry.map_err(db_err("scan"))?;
        out.push(decode(name, value.value())?);
    }
    Ok(out)
}
