//! The canonical statement a plugin signature covers (`signing::statement`). For every manifest the host accepts
//! (`policy::validate_manifest`), the statement must read back as exactly that manifest's signed fields: if two
//! accepted manifests could share a statement, one signature would vouch for both.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use osiris_fuzz::plugins::package::{ComponentEntry, Manifest, OsirisReq};
use osiris_fuzz::plugins::{policy, signing};

#[derive(Arbitrary, Debug)]
struct Input {
    name: String,
    version: String,
    abi_version: u32,
    target: String,
    entry: String,
    library_sha256: String,
    requires: Option<String>,
    min: Option<String>,
    max: Option<String>,
    components: Vec<(String, String)>,
}

/// The signed fields, as the statement should carry them.
fn signed_fields(m: &Manifest) -> Vec<(String, String)> {
    let mut fields = vec![
        ("name".to_string(), m.name.clone()),
        ("version".into(), m.version.clone()),
        ("target".into(), m.target.clone()),
        ("abi".into(), m.abi_version.to_string()),
        ("entry".into(), m.entry.clone()),
        ("osiris".into(), m.osiris.as_requirement()),
        (
            "library-sha256".into(),
            m.library_sha256.to_ascii_lowercase(),
        ),
    ];
    let mut comps: Vec<(String, String)> = m
        .components
        .iter()
        .map(|c| (c.name.clone(), c.spec_sha256.to_ascii_lowercase()))
        .collect();
    comps.sort();
    fields.extend(
        comps
            .into_iter()
            .map(|(n, s)| ("component".to_string(), format!("{n} {s}"))),
    );
    fields
}

/// Reads a statement back: a version line, then `key: value` lines.
fn read_back(statement: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(statement).expect("the statement is UTF-8");
    let body = text
        .strip_prefix(signing::STATEMENT_VERSION)
        .and_then(|t| t.strip_prefix('\n'))
        .expect("the statement starts with its version line");
    assert!(body.ends_with('\n'), "every line ends in a newline");
    body.lines()
        .map(|line| {
            let (k, v) = line.split_once(": ").expect("`key: value`");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let m = Manifest {
        name: input.name,
        version: input.version,
        abi_version: input.abi_version,
        sdk_version: None,
        target: input.target,
        library: "libx.so".into(),
        entry: input.entry,
        library_sha256: input.library_sha256,
        osiris: OsirisReq {
            requires: input.requires,
            min_osiris_version: input.min,
            max_osiris_version: input.max,
        },
        components: input
            .components
            .into_iter()
            .enumerate()
            .map(|(i, (name, spec_sha256))| ComponentEntry {
                name,
                spec: format!("spec{i}.yaml"),
                spec_sha256,
            })
            .collect(),
    };
    let statement = signing::statement(&m);
    assert_eq!(statement, signing::statement(&m.clone()), "deterministic");
    if policy::validate_manifest(osiris_fuzz::scratch_dir(), &m).is_err() {
        return;
    }
    assert_eq!(
        read_back(&statement),
        signed_fields(&m),
        "the statement of an accepted manifest reads back as its fields"
    );
});
