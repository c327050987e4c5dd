//! MySQL / MariaDB components: `mysql.extractor` (prepared statement, rows streamed into Arrow batches) and
//! `mysql.writer` (multi-row INSERTs in one transaction; append, replace, upsert).
//!
//! Connections are pooled per connection settings for the life of the process (see [`pool`]): the steps of one
//! run that use the same connection share sessions instead of each opening its own.

mod conn;
mod discover;
mod pool;
mod read;
mod write;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_mysql,
    name: "osiris-mysql",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "mysql.extractor",
            spec_yaml: include_str!("../../../components/mysql.extractor/spec.yaml"),
            driver: || Box::new(read::Extractor),
        },
        osiris_plugin_sdk::Component {
            name: "mysql.writer",
            spec_yaml: include_str!("../../../components/mysql.writer/spec.yaml"),
            driver: || Box::new(write::Writer),
        },
    ],
}
