//! The OData layer: query options parsed into a typed AST ([`query`]), entity JSON in and out
//! ([`json`]), CSV ([`csv_format`]), the Graph error envelope ([`error`]) and `$metadata`
//! ([`csdl`]). It knows nothing of HTTP or SQL.

pub mod query;
