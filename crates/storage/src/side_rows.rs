//! Decoding the rows of the side tables (the directory's, the accounts'), which both backends
//! read as [`SqlValue`]s.

use uuid::Uuid;

use crate::directory::SqlValue;
use crate::StorageError;

/// Reads the values of one side table's rows; a value of the wrong type (a database edited by
/// hand, or a bug) is an error that names the table and the value, never a default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowDecoder(pub(crate) &'static str);

impl RowDecoder {
    /// The error for a malformed `what` ("user row", "tenant id").
    pub(crate) fn corrupt(self, what: &str) -> StorageError {
        StorageError::Backend(format!("the {} table holds a malformed {what}", self.0).into())
    }

    /// Takes a text value out of `value` (leaving NULL).
    pub(crate) fn text(self, value: &mut SqlValue, what: &str) -> Result<String, StorageError> {
        match std::mem::replace(value, SqlValue::Null) {
            SqlValue::Text(text) => Ok(text),
            _ => Err(self.corrupt(what)),
        }
    }

    /// An integer value.
    pub(crate) fn int(self, value: &SqlValue, what: &str) -> Result<i64, StorageError> {
        match value {
            SqlValue::Int(n) => Ok(*n),
            _ => Err(self.corrupt(what)),
        }
    }

    /// A GUID stored as text.
    pub(crate) fn uuid(self, value: &mut SqlValue, what: &str) -> Result<Uuid, StorageError> {
        Uuid::parse_str(&self.text(value, what)?).map_err(|_| self.corrupt(what))
    }
}
