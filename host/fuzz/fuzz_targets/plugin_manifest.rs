//! `osiris-plugin.toml` as the plugin host reads it: `read_manifest`, then the consistency check and the checks
//! that need no library (ABI, target, host version, allowlist). Any input may be refused; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osiris_fuzz::plugins::package::{MANIFEST_FILE, read_manifest};
use osiris_fuzz::plugins::policy::{self, Allowlist};

fuzz_target!(|data: &[u8]| {
    let dir = osiris_fuzz::scratch_dir();
    std::fs::write(dir.join(MANIFEST_FILE), data).expect("scratch file");
    let Ok(m) = read_manifest(dir) else {
        return;
    };
    if policy::validate_manifest(dir, &m).is_err() {
        return;
    }
    let _ = policy::check_abi(&m);
    let _ = policy::check_target(&m);
    let _ = policy::check_host_version(&m);
    // The manifest's own name and version against an allowlist built from them, and against fixed entries.
    let own = format!("{}=={}", m.name, m.version);
    let allow = Allowlist::parse(&[own, "acme-*".into(), format!("{}>=0.1, <2", m.name)]);
    let _ = allow.problems();
    let _ = policy::check_allowlist(&m, Some(&allow));
});
