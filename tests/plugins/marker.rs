// Shared by the test plugins (`include!`d into each lib.rs).
//
// A library constructor: when the library is loaded (dlopen), before any of its functions is called, it writes
// `<plugin>.loaded` (one line per load, with the process id) into `$OSIRIS_TEST_MARKER_DIR` if that is set.
// Tests of the plugin host use it to prove that no plugin code ran before the trust checks passed.

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[unsafe(link_section = ".init_array")]
static OSIRIS_TEST_MARKER_CTOR: extern "C" fn() = osiris_test_marker;

#[cfg(target_vendor = "apple")]
#[used]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static OSIRIS_TEST_MARKER_CTOR: extern "C" fn() = osiris_test_marker;

extern "C" fn osiris_test_marker() {
    // Nothing here may panic (it runs inside dlopen).
    let _ = std::panic::catch_unwind(|| {
        if let Some(dir) = std::env::var_os("OSIRIS_TEST_MARKER_DIR") {
            use std::io::Write;
            let path = std::path::Path::new(&dir).join(concat!(env!("CARGO_PKG_NAME"), ".loaded"));
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{}", std::process::id());
            }
        }
    });
}
