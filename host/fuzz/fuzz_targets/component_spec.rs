//! Component specs (`spec.yaml`, embedded in every plugin) through the registry's loader: `check_text` at every
//! level, then `Registry::load_spec_text` as a plugin's spec would be added. Any text may be refused, with
//! diagnostics; none may panic, and every diagnostic must point inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osiris_fuzz::registry::check::{Level, check_text};
use osiris_fuzz::registry::{Registry, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = || Source::Plugin {
        name: "acme-fuzz".into(),
        version: "1.0.0".into(),
    };
    for level in [Level::Basic, Level::Enhanced, Level::Strict] {
        let report = check_text("spec.yaml", text, level, source());
        // YAML counts a line break as LF, CRLF or a lone CR (YAML 1.2, 5.4), so a file with old Mac line endings
        // has more lines than `str::lines` sees.
        let lines = text
            .replace("\r\n", "\n")
            .split(['\n', '\r'])
            .count()
            .max(1);
        for d in &report.diagnostics {
            if let Some(line) = d.line {
                assert!(line <= lines + 1, "line {line} of {lines}: {d:?}");
            }
        }
    }
    let mut registry = Registry::default();
    let _ = registry.load_spec_text("spec.yaml", text, source());
});
