//! What the SQLite-side storage tests share.

use reportroot_model::Value;
use reportroot_storage::query_sql::{CompiledSql, SqlParam};

/// A statement's parameters for rusqlite.
pub fn sqlite_params(
    compiled: &CompiledSql,
) -> rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>> {
    let params: Vec<rusqlite::types::Value> = compiled
        .params
        .iter()
        .map(|p| match p {
            SqlParam::Uuid(id) => rusqlite::types::Value::Blob(id.as_bytes().to_vec()),
            SqlParam::Int(n) | SqlParam::Value(Value::Int(n)) => {
                rusqlite::types::Value::Integer(*n)
            }
            SqlParam::Value(v) => rusqlite::types::Value::Text(v.to_string()),
        })
        .collect();
    rusqlite::params_from_iter(params)
}
