//! Authoring a component end to end through the real binary: `osiris component new` renders the template
//! outside the workspace, the generated crate's own tests run, `osiris plugins pack/sign/install` put it into a
//! project with the default policy (unsigned plugins refused), `osiris run` uses it, and a changed library is refused before it is loaded.
//!
//! The generated crate builds into `$CARGO_TARGET_DIR/authoring` (kept between runs, so reruns are fast).

use crate::support::{osiris, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FAMILY: &str = "authtest";
const PLUGIN: &str = "authtest-extractor";
const COMPONENT: &str = "authtest.extractor";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn both(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("authoring"),
        None => repo_root().join("target/authoring"),
    }
}

fn cargo(crate_dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .current_dir(crate_dir)
        .args(args)
        .arg("--target-dir")
        .arg(target_dir())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every `{{` left in the rendered crate is a GitHub expression `${{ .. }}` of the CI file; no `{%` at all.
fn assert_fully_rendered(crate_dir: &Path) {
    let mut files = Vec::new();
    files_under(crate_dir, &mut files);
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("{%"),
            "{} keeps a template tag",
            file.display()
        );
        for (at, _) in text.match_indices("{{") {
            assert!(
                at > 0 && &text[at - 1..at] == "$" && file.ends_with(".github/workflows/ci.yml"),
                "{} keeps an unrendered `{{{{` at byte {at}",
                file.display()
            );
        }
    }
}

fn pipeline(rows: u32) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: authored
steps:
  - id: extract
    component: {COMPONENT}
    mode: read
    config:
      rows: {rows}
      batch_size: 4
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/result.csv
"#
    )
}

#[test]
fn a_new_component_is_tested_packed_signed_installed_run_and_refused_once_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    assert!(
        !root.starts_with(repo_root()),
        "the crate must be generated outside the workspace"
    );
    let crate_dir = root.join(PLUGIN);
    let project = root.join("project");
    std::fs::create_dir_all(&project).unwrap();

    // 1. Render the template.
    let sdk = repo_root().join("plugin-sdk");
    let out = osiris(root)
        .args([
            "component",
            "new",
            COMPONENT,
            "--path",
            crate_dir.to_str().unwrap(),
            "--sdk-path",
            sdk.to_str().unwrap(),
            "--description",
            "Rows for the authoring test",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stdout(&out).contains("osiris_ocp_authtest_extractor"),
        "{}",
        both(&out)
    );
    assert_fully_rendered(&crate_dir);
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("name = \"{PLUGIN}\"")),
        "{manifest}"
    );
    assert!(
        manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"),
        "{manifest}"
    );
    assert!(manifest.contains("[workspace]"), "{manifest}");
    // Pin the dependency versions the workspace uses (arrow 58 among them) instead of resolving anew.
    std::fs::copy(repo_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();

    // 2. The generated crate's own tests (spec check, runs through the loaded cdylib) pass; it builds.
    let out = cargo(&crate_dir, &["test"]);
    assert!(
        out.status.success(),
        "cargo test of the generated crate:\n{}",
        both(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("test result: ok. 4 passed"), "{text}");
    let out = cargo(&crate_dir, &["build"]);
    assert!(out.status.success(), "cargo build:\n{}", both(&out));

    // 3. Pack, create a key, trust it (with an allowlist; unsigned plugins are refused by default), sign.
    let dist = root.join("dist").join(PLUGIN);
    let out = osiris(root)
        .args([
            "plugins",
            "pack",
            "--manifest-path",
            crate_dir.to_str().unwrap(),
            "--out",
            dist.to_str().unwrap(),
        ])
        // `plugins pack` runs cargo: build into the persistent authoring target directory.
        .cargo_target_dir(target_dir())
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let toml_text = std::fs::read_to_string(dist.join("osiris-plugin.toml")).unwrap();
    assert!(
        toml_text.contains("entry = \"osiris_ocp_authtest_extractor\""),
        "{toml_text}"
    );
    assert!(
        toml_text.contains(&format!("name = \"{COMPONENT}\"")),
        "{toml_text}"
    );

    let key = project.join("signing.key");
    let out = osiris(&project)
        .args(["plugins", "keygen", "--out", key.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let public = std::fs::read_to_string(project.join("signing.key.pub"))
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        project.join("osiris.yaml"),
        format!(
            "plugins:\n  allowlist: [\"{PLUGIN}==0.1.0\"]\n  trusted_keys:\n    - id: authoring\n      public_key: \"{public}\"\n      scope: \"{FAMILY}-*\"\n      families: [{FAMILY}]\n"
        ),
    )
    .unwrap();

    // Unsigned: install refuses and copies nothing.
    let out = osiris(&project)
        .args(["plugins", "install", dist.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains("PLUGIN-E006"), "{}", both(&out));
    assert!(!project.join(".osiris/plugins").join(PLUGIN).exists());

    let out = osiris(&project)
        .args([
            "plugins",
            "sign",
            dist.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--key-id",
            "authoring",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // 4. Install into the project's plugin directory (the default) and run a pipeline with it.
    let out = osiris(&project)
        .args(["plugins", "install", dist.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let installed = project.join(".osiris/plugins").join(PLUGIN);
    assert!(installed.join("osiris-plugin.sig").is_file());
    std::fs::write(project.join("p.yaml"), pipeline(7)).unwrap();
    let out = osiris(&project).args(["run", "p.yaml"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let result = std::fs::read_to_string(project.join("out/result.csv")).unwrap();
    let lines: Vec<&str> = result.lines().collect();
    assert_eq!(lines.len(), 8, "header + 7 rows: {result}");
    assert_eq!(lines[0], "id,name");
    assert_eq!(lines[1], "0,authtest-0");
    assert_eq!(lines[7], "6,authtest-6");

    // 5. One byte of the installed library changes: the same run is refused before the plugin is loaded.
    let m = std::fs::read_to_string(installed.join("osiris-plugin.toml")).unwrap();
    let lib_file = m
        .lines()
        .find_map(|l| l.strip_prefix("library = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the manifest names its library")
        .to_string();
    let lib = installed.join(&lib_file);
    let mut bytes = std::fs::read(&lib).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&lib, &bytes).unwrap();
    std::fs::remove_dir_all(project.join("out")).unwrap();
    let out = osiris(&project).args(["run", "p.yaml"]).output();
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("PLUGIN-E010"), "hash mismatch reported: {err}");
    assert!(err.contains(COMPONENT), "{err}");
    assert!(!project.join("out/result.csv").exists());
    let out = osiris(&project)
        .args(["plugins", "list", "--format", "json"])
        .output();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == PLUGIN)
        .unwrap_or_else(|| panic!("{rows:#}"));
    assert_eq!(row["status"], "rejected", "{row:#}");
    assert_eq!(row["code"], "PLUGIN-E010", "{row:#}");

    // 6. Remove it; removing it again is an error naming what is installed.
    let out = osiris(&project)
        .args(["plugins", "remove", PLUGIN])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(!installed.exists());
    let out = osiris(&project)
        .args(["plugins", "remove", PLUGIN])
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("installed there: none"),
        "{}",
        both(&out)
    );
}

#[test]
fn component_new_refuses_bad_names_and_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["Shop.extractor"], "not a valid component family"),
        (
            vec!["shop.reader"],
            "must be `extractor`, `writer` or `processor`",
        ),
        (vec!["shop"], "no role for `shop`"),
        (
            vec!["shop.writer", "--role", "extractor"],
            "make them agree",
        ),
    ] {
        let mut all = vec!["component", "new"];
        all.extend(args.iter().copied());
        let out = osiris(tmp.path()).args(&all).output();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", both(&out));
    }
    std::fs::create_dir_all(tmp.path().join("shop-writer")).unwrap();
    std::fs::write(tmp.path().join("shop-writer/keep.txt"), "x").unwrap();
    let out = osiris(tmp.path())
        .args(["component", "new", "shop", "--role", "writer"])
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("already exists and is not empty"),
        "{}",
        both(&out)
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("shop-writer/keep.txt")).unwrap(),
        "x"
    );
    // The default directory is the crate name; every role renders.
    let out = osiris(tmp.path())
        .args(["component", "new", "shop.processor"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_fully_rendered(&tmp.path().join("shop-processor"));
    let spec = std::fs::read_to_string(tmp.path().join("shop-processor/spec.yaml")).unwrap();
    assert!(
        spec.contains("name: shop.processor") && spec.contains("- transform"),
        "{spec}"
    );
}
