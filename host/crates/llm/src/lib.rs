//! `osiris-llm`: what a language model is given and how its answers are checked.
//!
//! It owns the compact description of the OML rules and the component catalogue that a model writes pipelines
//! from ([`context`]: deterministic bytes, an exact cl100k token count, a cache on disk keyed by the spec
//! fingerprints), the token counter ([`tokens`]) and `osiris chat` ([`chat`]: providers, configuration, the
//! generate-validate-repair loop).
//!
//! It depends on `osiris-core`, `osiris-registry` and `osiris-oml`: the registry is passed in (the caller builds
//! it, with the plugins that passed their trust checks), and a model's pipeline is checked by the same
//! validator as `osiris oml validate` ([`osiris_oml::check`]).
//!
//! It may not: parse arguments (no clap), print (results are returned; the caller decides what to show), read a
//! secret value or send one anywhere: what reaches a model is the context (component names, field names, the
//! names of secret fields but never a value), connection names, and what the user typed.

pub mod chat;
pub mod context;
pub mod tokens;
