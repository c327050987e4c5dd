//! First-party GraphQL component: `graphql.extractor`.
//!
//! Built as a `cdylib` (loadable OCP, entry symbol `osiris_ocp_graphql`) and as an `rlib` that the host links
//! in through the same entry.

mod extractor;
mod ordered;
mod records;

pub use extractor::GraphqlExtractor;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_graphql,
    name: "osiris-graphql",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "graphql.extractor",
            spec_yaml: include_str!("../../../components/graphql.extractor/spec.yaml"),
            driver: || Box::new(GraphqlExtractor),
        },
    ],
}
