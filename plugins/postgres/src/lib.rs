//! PostgreSQL and Supabase components on one engine: `postgres.extractor`, `postgres.writer`,
//! `supabase.extractor`, `supabase.writer`.
//!
//! Extractors stream `COPY (query) TO STDOUT (FORMAT binary)` into Arrow batches; writers stream the input into
//! a staging table with binary `COPY ... FROM STDIN` and move it into the target in one transaction. Supabase
//! is PostgreSQL reached through the project's database connection (`pg_dsn`, or `host`/`password` with
//! defaults derived from `url`/`project_id`).
//!
//! Connections are pooled per connection settings for the life of the process (see [`pool`]): the steps of one
//! run that use the same connection share sessions instead of each opening its own.

mod conn;
mod decode;
mod discover;
mod encode;
mod extract;
mod pool;
mod write;

use conn::Flavor;
use extract::Extractor;
use write::Writer;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_postgres,
    name: "osiris-postgres",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "postgres.extractor",
            spec_yaml: include_str!("../../../components/postgres.extractor/spec.yaml"),
            driver: || Box::new(Extractor { flavor: Flavor::Postgres }),
        },
        osiris_plugin_sdk::Component {
            name: "postgres.writer",
            spec_yaml: include_str!("../../../components/postgres.writer/spec.yaml"),
            driver: || Box::new(Writer { flavor: Flavor::Postgres }),
        },
        osiris_plugin_sdk::Component {
            name: "supabase.extractor",
            spec_yaml: include_str!("../../../components/supabase.extractor/spec.yaml"),
            driver: || Box::new(Extractor { flavor: Flavor::Supabase }),
        },
        osiris_plugin_sdk::Component {
            name: "supabase.writer",
            spec_yaml: include_str!("../../../components/supabase.writer/spec.yaml"),
            driver: || Box::new(Writer { flavor: Flavor::Supabase }),
        },
    ],
}
