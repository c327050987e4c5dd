// The package's own dependency (`osiris-cli`, for the binary) is linked into this test crate unused.
#![allow(unused_crate_dependencies)]

mod authoring;
mod boundary;
mod bulk;
mod cancel;
mod chat;
mod cli_exit;
mod codes;
mod compile;
mod components;
mod csv;
mod db;
mod dbutil;
mod discovery;
mod docs;
mod envelopes;
mod evolution;
mod faults;
mod graphql;
mod incremental;
mod mcp;
mod plugins;
mod pool;
mod prompts;
mod report;
mod run;
mod runs;
mod sdk;
mod shopify;
mod support;
