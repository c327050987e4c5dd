//! The SDK's driver compliance kit on `postgres.extractor` and `postgres.writer`, through the entry the cdylib
//! exports (`Module::from_static(&OCP_ENTRY)`), against the local PostgreSQL server (127.0.0.1:5432, user
//! `postgres`, trust auth), with the setup both database plugins share (`osiris_plugin_dbcommon::testing`):
//! each test works in a database of its own, dropped at the end. When the server is unreachable the tests are
//! skipped with a note, unless `OSIRIS_REQUIRE_DATABASES=1`.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_dbcommon::testing::{self, Postgres, TestServer};
use osiris_plugin_sdk::host::Module;
use std::sync::Arc;

fn module() -> Arc<Module> {
    Arc::new(
        Module::from_static(&osiris_plugin_postgres::OCP_ENTRY)
            .expect("the PostgreSQL plugin loads"),
    )
}

#[test]
fn postgres_extractor_is_compliant() {
    if Postgres::available("postgres_extractor_is_compliant") {
        testing::extractor_is_compliant::<Postgres>(module(), "postgres.extractor");
    }
}

#[test]
fn postgres_writer_is_compliant() {
    if Postgres::available("postgres_writer_is_compliant") {
        testing::writer_is_compliant::<Postgres>(module(), "postgres.writer");
    }
}
