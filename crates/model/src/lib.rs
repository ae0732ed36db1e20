//! The model layer of reportroot: the registry of report types and the typed values of their
//! properties. Everything above (OData formats, storage, HTTP, CLI) is driven by [`registry`];
//! this crate depends on nothing of theirs.

pub mod demo;
pub mod period;
pub mod registry;
mod snake_case;
pub mod value;

pub use period::Period;
pub use registry::{
    find_report, report_by_function, DemoSpec, Grain, Property, ReportFunction, ReportType,
    SortKey, V1Return, ValueKind, Version, VersionColumns, REPORTS,
};
pub use value::{
    duration_from_iso, duration_iso_from_seconds, duration_seconds_from_iso, duration_to_iso, Date,
    Entity, TenantId, Value, ValueError,
};
