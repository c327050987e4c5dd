//! Stable codes for every plugin refusal: a typed view of the `PLUGIN-*` rows of the one table of codes
//! ([`osiris_core::codes::Code`]), documented with their fix in docs/errors.md and docs/plugins.md.
//!
//! Invariant: a code never changes meaning; new refusal kinds get new numbers.

use osiris_core::codes::Code as Table;
use osiris_core::diag::Severity;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// The package cannot be read: manifest missing or invalid, library or spec file missing.
    ManifestInvalid,
    /// The plugin was built for an ABI major this host does not support.
    AbiMismatch,
    /// The plugin was built for another platform (target triple).
    TargetMismatch,
    /// This host's version is outside the plugin's `[osiris]` range.
    HostVersion,
    /// An allowlist is configured and the plugin (name, version) is not on it.
    NotAllowlisted,
    /// `require_signatures: true` and the package has no signature.
    Unsigned,
    /// The signature does not verify (wrong statement, corrupted, or malformed signature file).
    SignatureInvalid,
    /// The signing key id is not among `plugins.trusted_keys`.
    KeyUntrusted,
    /// The signing key is trusted, but its `scope` does not cover this plugin name.
    KeyOutOfScope,
    /// A file's SHA-256 differs from the one in the manifest (library or spec changed after packaging).
    HashMismatch,
    /// `dlopen` or the ABI layout check failed.
    LoadFailed,
    /// The loaded module reports a different name, version, ABI or component set / spec than was verified.
    SelfReportMismatch,
    /// The registry refused a spec the plugin ships.
    SpecInvalid,
    /// Two plugins claim the same component name.
    DuplicateComponent,
    /// A plugin claims the name of a built-in component.
    BuiltinConflict,
    /// A plugin or component name breaks the one name grammar (manifest, allowlist, `plugins remove`, `pack`).
    NameInvalid,
    /// A write of `install`, `remove`, `pack` or `sign` would leave its directory (a link, a directory that is
    /// not a plugin package of that name).
    PathUnsafe,
    /// The signing key (or the absence of one) does not allow a component family the plugin claims.
    ComponentOutOfScope,
    /// An older build of a plugin would shadow a newer validly signed one (rollback).
    Rollback,
    /// The plugin directory, package or one of its files is writable by other users.
    WritableByOthers,
    /// The library has its own search path or depends on a library outside the system library directories.
    UnsafeDependency,
    /// The library was built with `panic = "abort"` (or does not record its panic strategy).
    PanicStrategy,
    /// Warning: the same plugin name in a higher-precedence directory wins.
    Shadowed,
    /// Warning: plugins are disabled (`--disable-plugins` or `plugins.enabled: false`).
    Disabled,
    /// Warning: an entry of `plugins:` in osiris.yaml is unusable (bad allowlist entry, key or scope).
    ConfigProblem,
}

impl Code {
    pub const ALL: [Code; 25] = [
        Code::ManifestInvalid,
        Code::AbiMismatch,
        Code::TargetMismatch,
        Code::HostVersion,
        Code::NotAllowlisted,
        Code::Unsigned,
        Code::SignatureInvalid,
        Code::KeyUntrusted,
        Code::KeyOutOfScope,
        Code::HashMismatch,
        Code::LoadFailed,
        Code::SelfReportMismatch,
        Code::SpecInvalid,
        Code::DuplicateComponent,
        Code::BuiltinConflict,
        Code::NameInvalid,
        Code::PathUnsafe,
        Code::ComponentOutOfScope,
        Code::Rollback,
        Code::WritableByOthers,
        Code::UnsafeDependency,
        Code::PanicStrategy,
        Code::Shadowed,
        Code::Disabled,
        Code::ConfigProblem,
    ];

    /// The code in the one table.
    pub const fn code(self) -> Table {
        match self {
            Code::ManifestInvalid => Table::PLUGIN_E001,
            Code::AbiMismatch => Table::PLUGIN_E002,
            Code::TargetMismatch => Table::PLUGIN_E003,
            Code::HostVersion => Table::PLUGIN_E004,
            Code::NotAllowlisted => Table::PLUGIN_E005,
            Code::Unsigned => Table::PLUGIN_E006,
            Code::SignatureInvalid => Table::PLUGIN_E007,
            Code::KeyUntrusted => Table::PLUGIN_E008,
            Code::KeyOutOfScope => Table::PLUGIN_E009,
            Code::HashMismatch => Table::PLUGIN_E010,
            Code::LoadFailed => Table::PLUGIN_E011,
            Code::SelfReportMismatch => Table::PLUGIN_E012,
            Code::SpecInvalid => Table::PLUGIN_E013,
            Code::DuplicateComponent => Table::PLUGIN_E014,
            Code::BuiltinConflict => Table::PLUGIN_E015,
            Code::NameInvalid => Table::PLUGIN_E017,
            Code::PathUnsafe => Table::PLUGIN_E018,
            Code::ComponentOutOfScope => Table::PLUGIN_E019,
            Code::Rollback => Table::PLUGIN_E020,
            Code::WritableByOthers => Table::PLUGIN_E021,
            Code::UnsafeDependency => Table::PLUGIN_E022,
            Code::PanicStrategy => Table::PLUGIN_E023,
            Code::Shadowed => Table::PLUGIN_W001,
            Code::Disabled => Table::PLUGIN_W002,
            Code::ConfigProblem => Table::PLUGIN_W003,
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.code().as_str()
    }

    /// Short title, as in docs/errors.md.
    pub const fn title(self) -> &'static str {
        self.code().summary()
    }

    pub fn is_warning(self) -> bool {
        self.code().severity() == Severity::Warning
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_typed_view_is_the_plugin_family_of_the_table() {
        let view: BTreeSet<Table> = Code::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            view.len(),
            Code::ALL.len(),
            "two refusal kinds share a code"
        );
        let table: BTreeSet<Table> = Table::ALL
            .iter()
            .copied()
            .filter(|c| c.family() == "PLUGIN")
            .collect();
        assert_eq!(view, table);
        let plugins_md = include_str!("../../../../docs/plugins.md");
        for c in Code::ALL {
            assert!(
                plugins_md.contains(&format!("| `{c}` |")),
                "{c} is not documented in docs/plugins.md"
            );
        }
    }

    /// The plugin SDK, which depends on no osiris crate, defines the codes it raises at the boundary itself.
    #[test]
    fn the_sdk_raises_the_ocp_codes_of_the_table() {
        let sdk: BTreeSet<&str> = osiris_plugin_sdk::CODES.into_iter().collect();
        assert_eq!(sdk.len(), osiris_plugin_sdk::CODES.len());
        let table: BTreeSet<&str> = Table::ALL
            .iter()
            .filter(|c| c.family() == "OCP")
            .map(|c| c.as_str())
            .collect();
        assert_eq!(sdk, table);
        assert_eq!(osiris_plugin_sdk::PANIC_CODE, Table::OCP_PANIC.as_str());
        assert_eq!(
            osiris_plugin_sdk::POISONED_CODE,
            Table::OCP_POISONED.as_str()
        );
        assert_eq!(
            osiris_plugin_sdk::INVALID_BATCH_CODE,
            Table::OCP_INVALID_BATCH.as_str()
        );
        assert_eq!(
            osiris_plugin_sdk::STREAM_ERROR_CODE,
            Table::OCP_STREAM_ERROR.as_str()
        );
        assert_eq!(
            osiris_plugin_sdk::UNKNOWN_COMPONENT_CODE,
            Table::OCP_UNKNOWN_COMPONENT.as_str()
        );
    }
}
