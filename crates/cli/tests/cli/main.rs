//! The CLI's tests: the `reportroot` binary run as a user runs it.
//!
//! One test binary per crate, each file below a module of it: a binary per file meant 31 test
//! binaries, each linked against axum, reqwest, rustls, rusqlite and tokio-postgres — link work
//! repeated on CI's 2 cores. New test files go here as modules, not beside this directory.
mod data;
mod import_sqlite;
mod kill9;
mod signin;
mod users;
