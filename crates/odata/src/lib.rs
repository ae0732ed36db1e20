//! The OData layer: query options parsed into a typed AST ([`query`]), entity JSON in and out
//! ([`json`]), Graph's CSV ([`csv_format`]), the Graph error envelope ([`error`]). It knows
//! nothing of HTTP or SQL.

pub mod csdl;
pub mod csv_format;
pub mod error;
pub mod json;
mod json_writer;
pub mod query;
