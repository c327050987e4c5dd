//! Stable codes for every plugin refusal, documented with their fix in docs/errors.md and docs/plugins.md.
//!
//! Invariant: a code never changes meaning; new refusal kinds get new numbers.

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
    /// A plugin panicked at run time; its module refuses further calls.
    Poisoned,
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
    pub const ALL: [Code; 26] = [
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
        Code::Poisoned,
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

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ManifestInvalid => "PLUGIN-E001",
            Code::AbiMismatch => "PLUGIN-E002",
            Code::TargetMismatch => "PLUGIN-E003",
            Code::HostVersion => "PLUGIN-E004",
            Code::NotAllowlisted => "PLUGIN-E005",
            Code::Unsigned => "PLUGIN-E006",
            Code::SignatureInvalid => "PLUGIN-E007",
            Code::KeyUntrusted => "PLUGIN-E008",
            Code::KeyOutOfScope => "PLUGIN-E009",
            Code::HashMismatch => "PLUGIN-E010",
            Code::LoadFailed => "PLUGIN-E011",
            Code::SelfReportMismatch => "PLUGIN-E012",
            Code::SpecInvalid => "PLUGIN-E013",
            Code::DuplicateComponent => "PLUGIN-E014",
            Code::BuiltinConflict => "PLUGIN-E015",
            Code::Poisoned => "PLUGIN-E016",
            Code::NameInvalid => "PLUGIN-E017",
            Code::PathUnsafe => "PLUGIN-E018",
            Code::ComponentOutOfScope => "PLUGIN-E019",
            Code::Rollback => "PLUGIN-E020",
            Code::WritableByOthers => "PLUGIN-E021",
            Code::UnsafeDependency => "PLUGIN-E022",
            Code::PanicStrategy => "PLUGIN-E023",
            Code::Shadowed => "PLUGIN-W001",
            Code::Disabled => "PLUGIN-W002",
            Code::ConfigProblem => "PLUGIN-W003",
        }
    }

    /// Short title, as in docs/errors.md.
    pub fn title(self) -> &'static str {
        match self {
            Code::ManifestInvalid => "plugin package unreadable",
            Code::AbiMismatch => "plugin ABI not supported",
            Code::TargetMismatch => "plugin built for another platform",
            Code::HostVersion => "osiris version outside the plugin's range",
            Code::NotAllowlisted => "plugin not on the allowlist",
            Code::Unsigned => "unsigned plugin refused",
            Code::SignatureInvalid => "plugin signature invalid",
            Code::KeyUntrusted => "plugin signed by an untrusted key",
            Code::KeyOutOfScope => "signing key not trusted for this plugin name",
            Code::HashMismatch => "plugin file changed after packaging",
            Code::LoadFailed => "plugin library failed to load",
            Code::SelfReportMismatch => "loaded plugin differs from its verified manifest",
            Code::SpecInvalid => "plugin ships an invalid component spec",
            Code::DuplicateComponent => "two plugins provide the same component",
            Code::BuiltinConflict => "plugin component clashes with a built-in",
            Code::Poisoned => "plugin panicked and is poisoned",
            Code::NameInvalid => "invalid plugin or component name",
            Code::PathUnsafe => "refusing to write outside the directory",
            Code::ComponentOutOfScope => "component family outside the signing key's scope",
            Code::Rollback => "older build of a plugin than a validly signed one found",
            Code::WritableByOthers => "plugin files writable by other users",
            Code::UnsafeDependency => "plugin library depends on a non-system library",
            Code::PanicStrategy => "plugin built with `panic = \"abort\"`",
            Code::Shadowed => "plugin shadowed by a higher-precedence directory",
            Code::Disabled => "plugins disabled",
            Code::ConfigProblem => "unusable `plugins:` setting",
        }
    }

    pub fn is_warning(self) -> bool {
        matches!(self, Code::Shadowed | Code::Disabled | Code::ConfigProblem)
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
    fn codes_are_unique_and_documented() {
        let codes: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), Code::ALL.len());
        for (file, text) in [
            (
                "docs/plugins.md",
                include_str!("../../../../docs/plugins.md"),
            ),
            ("docs/errors.md", include_str!("../../../../docs/errors.md")),
        ] {
            for c in Code::ALL {
                assert!(
                    text.contains(&format!("| {} |", c.as_str()))
                        || text.contains(&format!("| `{}` |", c.as_str())),
                    "{} is not documented in {file}",
                    c.as_str()
                );
            }
        }
    }
}
