//! The SDK's driver compliance kit on `mysql.extractor` and `mysql.writer`, through the entry the cdylib
//! exports (`Module::from_static(&OCP_ENTRY)`), against the local MariaDB server (127.0.0.1:3306, user `root`
//! without a password), with the setup both database plugins share (`osiris_plugin_dbcommon::testing`): each
//! test works in a database of its own, dropped at the end. When the server is unreachable the tests are
//! skipped with a note, unless `OSIRIS_REQUIRE_DATABASES=1`.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_dbcommon::testing::{self, MariaDb, TestServer};
use osiris_plugin_sdk::host::Module;
use std::sync::Arc;

fn module() -> Arc<Module> {
    Arc::new(Module::from_static(&osiris_plugin_mysql::OCP_ENTRY).expect("the MySQL plugin loads"))
}

#[test]
fn mysql_extractor_is_compliant() {
    if MariaDb::available("mysql_extractor_is_compliant") {
        testing::extractor_is_compliant::<MariaDb>(module(), "mysql.extractor");
    }
}

#[test]
fn mysql_writer_is_compliant() {
    if MariaDb::available("mysql_writer_is_compliant") {
        testing::writer_is_compliant::<MariaDb>(module(), "mysql.writer");
    }
}
