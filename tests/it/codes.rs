//! Every stable code (the table `osiris_core::codes`, documented in docs/errors.md) is spelt once, reported by
//! some code path, and triggered through the CLI by a test (issue 15).
//!
//! `tests/data/codes/<CODE>/` is one case for `CODE`: `args` holds the command line after `osiris`, one argument a
//! line (`#` lines are comments), `exit` the exit code expected, and the other files are what the command
//! reads. A case runs in a scratch copy of its directory with its own HOME and
//! an empty machine policy, and must exit as expected and print the code: `error[CODE]` or `warning[CODE]` as
//! the table's severity says, `[CODE]` for a plugin-boundary code inside a `RUN-E004` message, or
//! `"code": "CODE"` in JSON. The tests at the end of this file trigger the codes that need a built plugin.
//!
//! A code is exercised when a case or a test here triggers it, or when another integration test (tests/it) or a
//! golden output (tests/data/**/*.stderr, *.stdout) names it; `tests/data/codes/uncovered.txt` lists each code
//! no test exercises yet, with why, and may only shrink.

use crate::support::{build_test_plugin, repo_root, test_plugin_entry};
use osiris_core::codes::{Code, RETIRED};
use osiris_core::diag::Severity;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

const UNCOVERED: &str = "tests/data/codes/uncovered.txt";

/// The plugin SDK's names of the codes it raises (it depends on no osiris crate, so it cannot use the table).
const SDK_CODES: [(&str, &str); 5] = [
    ("INVALID_BATCH_CODE", osiris_plugin_sdk::INVALID_BATCH_CODE),
    ("STREAM_ERROR_CODE", osiris_plugin_sdk::STREAM_ERROR_CODE),
    ("PANIC_CODE", osiris_plugin_sdk::PANIC_CODE),
    ("POISONED_CODE", osiris_plugin_sdk::POISONED_CODE),
    (
        "UNKNOWN_COMPONENT_CODE",
        osiris_plugin_sdk::UNKNOWN_COMPONENT_CODE,
    ),
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `osiris ARGS` in `cwd`, isolated: HOME and the XDG directories inside `cwd`, no inherited `OSIRIS_*`, an empty
/// machine policy, no colours.
fn osiris(cwd: &Path, args: &[String]) -> Output {
    crate::support::osiris(cwd).args(args).output()
}

/// Whether the output reports `code` in one of the forms it is printed in.
fn reports(o: &Output, code: Code) -> bool {
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    let sev = match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    all.contains(&format!("{sev}[{code}]"))
        || all.contains(&format!("\"code\":\"{code}\""))
        || all.contains(&format!("\"code\": \"{code}\""))
        || (code.family() == "OCP" && all.contains(&format!("[{code}]")))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The case directories, by code.
fn cases() -> BTreeMap<String, PathBuf> {
    let dir = repo_root().join("tests/data/codes");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.insert(p.file_name().unwrap().to_string_lossy().to_string(), p);
        }
    }
    out
}

#[test]
fn every_case_reports_its_code_through_the_cli() {
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() > 40, "{all:?}");
    for (name, dir) in &all {
        let Some(code) = Code::parse(name) else {
            failures.push(format!(
                "{name}: a case directory is named after a code of the table"
            ));
            continue;
        };
        let args = lines_of(&dir.join("args"));
        let want: i32 = match lines_of(&dir.join("exit")).first().map(|s| s.parse()) {
            Some(Ok(n)) => n,
            _ => {
                failures.push(format!(
                    "{name}: no `exit` file with the expected exit code"
                ));
                continue;
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(dir, tmp.path());
        let out = osiris(tmp.path(), &args);
        if out.status.code() != Some(want) || !reports(&out, code) {
            failures.push(format!(
                "{name}: `osiris {}` should exit {want} and report {code}:\n{}",
                args.join(" "),
                show(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `osiris chat` with the environment `env`: exit 5 and `error[CODE]`, without reaching any model.
fn chat_refuses(env: &[(&str, &str)], code: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::osiris(dir.path()).args([
        "chat",
        "--prompt",
        "copy a table",
        "--out",
        "p.yaml",
    ]);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let o = cmd.output();
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert!(
        text(&o.stderr).contains(&format!("error[{code}]")),
        "{}",
        show(&o)
    );
    assert!(!dir.path().join("p.yaml").exists());
}

#[test]
fn chat_without_a_model_is_llm_e011_and_a_bad_llm_variable_is_llm_e014() {
    let base = ("OSIRIS_LLM_BASE_URL", "http://127.0.0.1:9/v1");
    chat_refuses(&[base], "LLM-E011");
    chat_refuses(
        &[
            base,
            ("OSIRIS_LLM_MODEL", "m"),
            ("OSIRIS_LLM_PROVIDER", "carrier-pigeon"),
        ],
        "LLM-E014",
    );
}

#[test]
fn a_model_endpoint_that_answers_with_something_else_is_llm_e022() {
    let server =
        crate::support::serve(vec![crate::support::Reply::ok("<html>not an API</html>")]).start();
    let dir = tempfile::tempdir().unwrap();
    let o = crate::support::osiris(dir.path())
        .args(["chat", "--prompt", "copy a table", "--out", "p.yaml"])
        .env("OSIRIS_LLM_BASE_URL", server.url("/v1"))
        .env("OSIRIS_LLM_MODEL", "m")
        .env("OSIRIS_LLM_MAX_RETRIES", "0")
        .output();
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    assert!(text(&o.stderr).contains("error[LLM-E022]"), "{}", show(&o));
}

#[test]
fn an_mcp_address_already_in_use_is_mcp_e002() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = osiris(dir.path(), &["mcp".into(), "--http".into(), addr.clone()]);
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert!(text(&o.stderr).contains("error[MCP-E002]"), "{}", show(&o));
    assert!(
        text(&o.stderr).contains(&addr),
        "names the address: {}",
        show(&o)
    );
}

/// Regression test of issue 15: with `--mode strict` the warning OML-W035 became "OML-E035", a code that already
/// meant "an input names a writer step". It is OML-E036 now, as `Code::promoted` says.
#[test]
fn a_promoted_warning_keeps_a_code_of_its_own() {
    let dir = repo_root().join("tests/data/codes/OML-E036");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir, tmp.path());
    let args = |mode: &str| -> Vec<String> {
        ["oml", "validate", "pipeline.yaml", "--mode", mode]
            .map(String::from)
            .to_vec()
    };
    let warn = osiris(tmp.path(), &args("warn"));
    assert_eq!(warn.status.code(), Some(0), "{}", show(&warn));
    assert!(reports(&warn, Code::OML_W035), "{}", show(&warn));
    let strict = osiris(tmp.path(), &args("strict"));
    let err = text(&strict.stderr);
    assert_eq!(strict.status.code(), Some(2), "{}", show(&strict));
    assert!(
        err.contains("error[OML-E036]: `query` reads `input_df`"),
        "{err}"
    );
    assert!(!err.contains("OML-E035"), "{err}");
}

// ---- the sources ----

/// The Rust sources under `root` without their test code (files named `tests.rs`, `tests/` directories, and
/// everything from a file's first `#[cfg(test)]` on) and without comments.
fn sources(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "tests" && name != "target" && name != "templates" {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let all = std::fs::read_to_string(&p).unwrap();
            let code = all.split("#[cfg(test)]").next().unwrap_or_default();
            let rel = p.strip_prefix(repo_root()).unwrap_or(&p).to_path_buf();
            (rel, without_comments(code))
        })
        .collect()
}

/// The text without `//` comments (a `//` inside a string literal stays).
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = false;
        let mut escaped = false;
        let mut cut = line.len();
        let mut prev = '\0';
        for (i, ch) in line.char_indices() {
            if in_str {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    in_str = false;
                }
            } else if ch == '"' && prev != '\'' {
                in_str = true;
            } else if ch == '/' && prev == '/' {
                cut = i - 1;
                break;
            }
            prev = ch;
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn host_sources() -> Vec<(PathBuf, String)> {
    let all = sources(&repo_root().join("host/crates"));
    assert!(all.len() > 40, "found the host crates");
    all
}

/// Whether `text` names `ident` as a path segment (`Code::OML_E013`, `Table::PLUGIN_E001`).
fn names(text: &str, ident: &str) -> bool {
    text.match_indices(ident).any(|(i, _)| {
        let after = text[i + ident.len()..].chars().next();
        text[..i].ends_with("::") && !after.is_some_and(|a| a.is_alphanumeric() || a == '_')
    })
}

#[test]
fn no_code_is_spelt_as_a_string_outside_the_table() {
    let table = Path::new("host/crates/core/src/codes.rs");
    let spelt: Vec<String> = Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .chain(RETIRED.iter().map(|(r, _)| r.to_string()))
        .collect();
    let prefixes: BTreeSet<String> = Code::ALL
        .iter()
        .map(|c| format!("\"{}-", c.family()))
        .collect();
    let mut found = Vec::new();
    for (path, code) in host_sources() {
        if path == table {
            continue;
        }
        for s in spelt.iter().chain(&prefixes) {
            if code.contains(s.as_str()) {
                found.push(format!("{}: {s}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "codes spelt as strings: name them through osiris_core::codes::Code (`Code::OML_E013`, \
         `format!(\"error[{{}}]: ...\", Code::RUN_E004)`):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_code_is_reported_somewhere() {
    let host = host_sources();
    let outside = |skip: &str| -> Vec<&String> {
        host.iter()
            .filter(|(p, _)| !p.ends_with(skip))
            .map(|(_, t)| t)
            .collect()
    };
    let not_table = outside("core/src/codes.rs");
    let mut never = Vec::new();
    for c in Code::ALL {
        if c.family() == "OCP" {
            continue;
        }
        // A strict-mode error is reported where its warning is, by `promoted()`.
        let promoted_from = Code::ALL.iter().find(|w| w.promoted() == Some(*c));
        let reported = match promoted_from {
            Some(w) => {
                not_table.iter().any(|t| names(t, w.ident()))
                    && not_table.iter().any(|t| t.contains(".promoted()"))
            }
            None => not_table.iter().any(|t| names(t, c.ident())),
        };
        if !reported {
            never.push(format!("{c} ({})", c.summary()));
        }
    }
    // The PLUGIN codes are reported through their typed view, whose mapping names every one.
    let not_view = outside("plugins/src/codes.rs");
    for k in osiris_plugins::Code::ALL {
        let variant = format!("{k:?}");
        if !not_view.iter().any(|t| names(t, &variant)) {
            never.push(format!(
                "{k} (osiris_plugins::Code::{variant}, {})",
                k.title()
            ));
        }
    }
    // The OCP codes are raised by the plugin SDK.
    let sdk = sources(&repo_root().join("plugin-sdk/src"));
    for (name, value) in SDK_CODES {
        let code = Code::parse(value).unwrap_or_else(|| panic!("{value} is not in the table"));
        let uses: usize = sdk.iter().map(|(_, t)| t.matches(name).count()).sum();
        // The definition, the list `CODES`, the re-export, and at least one use.
        if uses < 4 {
            never.push(format!("{code} (osiris_plugin_sdk::{name})"));
        }
    }
    assert!(
        never.is_empty(),
        "defined and documented but never reported: report each where it belongs, or retire it (move it to \
         RETIRED in osiris_core::codes and mark its row in docs/errors.md `retired`; the number is never \
         reused):\n{}",
        never.join("\n")
    );
}

// ---- coverage ----

/// Whether a line names `code` in an assertion that it is there (not `!x.contains(..)` or `assert_ne!`).
fn asserts_presence(line: &str, code: &str) -> bool {
    line.match_indices(code).any(|(i, _)| {
        let before = &line[..i];
        let negated = before.contains("assert_ne!")
            || before.char_indices().any(|(j, ch)| {
                ch == '!'
                    && before[j + 1..]
                        .chars()
                        .next()
                        .is_some_and(|n| n.is_alphanumeric() || n == '_' || n == '&' || n == '*')
            });
        !negated
    })
}

/// Every code some test exercises, with where.
fn exercised() -> BTreeMap<Code, String> {
    let mut out = BTreeMap::new();
    for name in cases().keys() {
        if let Some(c) = Code::parse(name) {
            out.insert(c, format!("tests/data/codes/{name}"));
        }
    }
    let mut it: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/it"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    it.sort();
    for p in &it {
        let file = p.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(p).unwrap();
        for line in text.lines() {
            for c in Code::ALL {
                let by_sdk_name = SDK_CODES
                    .iter()
                    .find(|(_, v)| *v == c.as_str())
                    .is_some_and(|(n, _)| asserts_presence(line, n));
                if asserts_presence(line, c.as_str()) || by_sdk_name {
                    out.entry(*c).or_insert_with(|| format!("tests/it/{file}"));
                }
            }
        }
    }
    fn goldens(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("codes") {
                    goldens(&p, out);
                }
            } else if p
                .extension()
                .is_some_and(|x| x == "stderr" || x == "stdout")
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    goldens(&repo_root().join("tests/data"), &mut files);
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        for c in Code::ALL {
            if text.contains(&format!("[{c}]")) {
                let rel = p.strip_prefix(repo_root()).unwrap().display().to_string();
                out.entry(*c).or_insert(rel);
            }
        }
    }
    out
}

#[test]
fn every_code_is_exercised_by_a_test_or_listed_as_uncovered() {
    let listed: BTreeMap<String, String> = lines_of(&repo_root().join(UNCOVERED))
        .iter()
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((c, why)) => (c.to_string(), why.trim().to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let covered = exercised();
    let mut problems = Vec::new();
    for (code, why) in &listed {
        match Code::parse(code) {
            None => problems.push(format!("{UNCOVERED}: {code} is not a code of the table")),
            Some(c) => {
                if let Some(by) = covered.get(&c) {
                    problems.push(format!(
                        "{code} is exercised now ({by}): remove it from {UNCOVERED}"
                    ));
                }
                if why.is_empty() {
                    problems.push(format!("{UNCOVERED}: say why {code} is not covered"));
                }
            }
        }
    }
    for c in Code::ALL {
        if !covered.contains_key(c) && !listed.contains_key(c.as_str()) {
            problems.push(format!(
                "{c} ({}) is exercised by no test: add a case tests/data/codes/{c}/ (args, exit, inputs), or \
                 a test that asserts it",
                c.summary()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- codes that need a built plugin ----

const UNSIGNED_OK: &str = "plugins:\n  allow_unsigned: true\n";

/// A project with `osiris.yaml` (`allow_unsigned: true`) and the echo test plugin packaged into
/// `.osiris/plugins/echo`, after `tweak` changed what goes into the package.
fn echo_project(
    tweak: impl FnOnce(&mut osiris_plugins::package::PackageInput),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("osiris.yaml"), UNSIGNED_OK).unwrap();
    let mut input = osiris_plugins::package::PackageInput {
        name: "osiris-test-echo".to_string(),
        version: "0.1.0".to_string(),
        entry: test_plugin_entry("echo"),
        abi_version: osiris_plugin_sdk::ABI_VERSION,
        sdk_version: Some(osiris_plugin_sdk::SDK_VERSION.to_string()),
        target: None,
        library: build_test_plugin("echo"),
        requires: None,
        specs: vec![(
            "test.echo".to_string(),
            repo_root().join("tests/plugins/echo/spec.yaml"),
        )],
    };
    tweak(&mut input);
    osiris_plugins::package::write_package(&tmp.path().join(".osiris/plugins/echo"), &input)
        .unwrap();
    tmp
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    osiris(dir, &args)
}

/// Asserts that `out` exited `exit` and reports `code` (given as a string, so the coverage scan sees it).
fn expect(out: &Output, exit: i32, code: &str) {
    let c = Code::parse(code).unwrap_or_else(|| panic!("{code} is not in the table"));
    assert_eq!(out.status.code(), Some(exit), "{code}: {}", show(out));
    assert!(reports(out, c), "{code}: {}", show(out));
}

#[test]
fn a_plugin_that_panics_fails_its_step_with_ocp_panic() {
    let p = echo_project(|_| {});
    std::fs::write(p.path().join("in.csv"), "id,name\n1,ada\n2,alan\n").unwrap();
    std::fs::write(
        p.path().join("pipeline.yaml"),
        r#"oml_version: "0.1.0"
name: panics
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config: {path: in.csv}
  - id: echo
    component: test.echo
    mode: transform
    config: {panic: true}
  - id: write
    component: filesystem.csv_writer
    mode: write
    config: {path: out.csv}
"#,
    )
    .unwrap();
    let out = run(p.path(), &["run", "pipeline.yaml"]);
    expect(&out, 4, "RUN-E004");
    expect(&out, 4, "OCP-PANIC");
    assert!(
        text(&out.stderr).contains("echo was asked to panic in step `echo`"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_plugin_built_for_another_platform_is_refused() {
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let p = echo_project(|i| i.target = Some(other.to_string()));
    let out = run(p.path(), &["components", "list"]);
    expect(&out, 0, "PLUGIN-E003");
    assert!(text(&out.stderr).contains(other), "{}", show(&out));
}

#[test]
fn a_loaded_plugin_that_reports_another_version_than_its_manifest_is_refused() {
    let p = echo_project(|i| i.version = "0.2.0".to_string());
    let out = run(p.path(), &["plugins", "list", "--load", "--format", "json"]);
    expect(&out, 0, "PLUGIN-E012");
    assert!(
        text(&out.stdout).contains("reports version `0.1.0`"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_plugin_spec_for_another_osiris_version_is_refused() {
    let specs = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    assert!(!spec.contains("x-runtime"), "{spec}");
    let spec =
        format!("{spec}\nx-runtime:\n  driver: test.echo\n  min_osiris_version: \"99.0.0\"\n");
    let path = specs.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let p = echo_project(|i| i.specs = vec![("test.echo".to_string(), path)]);
    let out = run(p.path(), &["components", "list"]);
    expect(&out, 0, "PLUGIN-E013");
    expect(&out, 0, "SPEC-E037");
}

/// A second manifest entry (`test.other`) whose spec file names `test.echo`: refused before the registry, which
/// would file it under `test.echo` while the trust checks saw `test.other`.
#[test]
fn a_plugin_that_ships_two_specs_of_one_component_is_refused() {
    let specs = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    let other = specs.path().join("other.spec.yaml");
    std::fs::write(
        &other,
        spec.replace("title: Echo (test)", "title: Echo (another)"),
    )
    .unwrap();
    let p = echo_project(|i| i.specs.push(("test.other".to_string(), other)));
    let out = run(p.path(), &["components", "list"]);
    expect(&out, 0, "PLUGIN-E013");
    assert!(
        text(&out.stderr).contains("lists component `test.other`")
            && text(&out.stderr).contains("whose `name:` is `test.echo`"),
        "{}",
        show(&out)
    );
}

/// A component the module does not offer is refused on the host side of the boundary, before any plugin code
/// runs for it (the host only asks for components its verified manifest lists, so this is a guard against bugs).
#[test]
fn a_module_asked_for_a_component_it_does_not_offer_says_so() {
    let module = osiris_plugin_sdk::testing::load_cdylib(
        &build_test_plugin("echo"),
        &test_plugin_entry("echo"),
    )
    .unwrap_or_else(|e| panic!("loading echo: {e}"));
    let err = module
        .run(
            "test.nothing",
            "s1",
            &serde_json::json!({}),
            osiris_plugin_sdk::testing::TestContext::new(),
            osiris_plugin_sdk::Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.code, "OCP-UNKNOWN-COMPONENT", "{err}");
    assert!(
        err.message.contains("has no component `test.nothing`"),
        "{err}"
    );
    assert!(
        err.help
            .as_deref()
            .unwrap_or_default()
            .contains("`test.echo`"),
        "{err:?}"
    );
}
