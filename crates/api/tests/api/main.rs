//! The api crate's tests: the HTTP API, dashboard server side and sign-in against real servers.
//!
//! One test binary per crate, each file below a module of it: a binary per file meant 31 test
//! binaries, each linked against axum, reqwest, rustls, rusqlite and tokio-postgres — link work
//! repeated on CI's 2 cores. New test files go here as modules, not beside this directory.
#[macro_use]
mod common;
mod answer_cache;
mod auth;
mod batch;
mod connections;
mod dashboard_oidc;
mod dashboard_operator;
mod dashboard_pages;
mod dashboard_session;
mod entities;
mod family;
mod functions;
mod hardening;
mod instances;
mod nulls;
mod operation;
mod query;
mod router_props;
mod scan_limit;
mod series;
mod signin;
mod time_limit;
mod tls;
mod versions;
