//! `osiris-plugin.sig` and trusted public keys as the plugin host reads them: `signing::check` on a fixed, valid
//! manifest with fuzzed signature bytes, against a trusted key parsed from fuzzed text too (the first line of
//! the input is the key, the rest the signature file). Nothing may panic, and a fuzzed signature must never
//! verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osiris_fuzz::plugins::package::{ComponentEntry, Manifest, OsirisReq, SIGNATURE_FILE};
use osiris_fuzz::plugins::signing::{self, SigStatus, TrustedKey};

fn manifest() -> Manifest {
    Manifest {
        name: "acme-fuzz".into(),
        version: "1.0.0".into(),
        abi_version: 1,
        sdk_version: None,
        target: "x86_64-unknown-linux-gnu".into(),
        library: "libacme.so".into(),
        entry: "osiris_ocp_acme".into(),
        library_sha256: "ab".repeat(32),
        osiris: OsirisReq::default(),
        components: vec![ComponentEntry {
            name: "acme.extractor".into(),
            spec: "acme.extractor.yaml".into(),
            spec_sha256: "cd".repeat(32),
        }],
    }
}

/// A fixed public key (the all-zero seed's), trusted under the id the fuzzed file may name.
const KEY: &str = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (key_text, sig) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = signing::parse_public_key(key_text);
    let dir = osiris_fuzz::scratch_dir();
    std::fs::write(dir.join(SIGNATURE_FILE), sig.as_bytes()).expect("scratch file");
    let m = manifest();
    let trusted = [
        TrustedKey::new("fuzz", KEY, None, None),
        TrustedKey::new("scoped", KEY, Some("acme-*"), None),
        TrustedKey::new("other", key_text, Some(key_text), None),
    ];
    for require in [false, true] {
        let result = signing::check(dir, &m, &trusted, require);
        assert!(
            result.status != SigStatus::Valid,
            "a signature nobody made verified: {sig:?}"
        );
    }
});
