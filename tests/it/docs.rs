//! Issue 17: the documentation site. The generated reference pages (`osiris docs generate`) are current, the
//! book's SUMMARY.md names only pages that exist, and the quickstart tutorial runs as written.

use crate::support::{code, osiris, repo_root, text};
use std::path::{Path, PathBuf};

fn docs() -> PathBuf {
    repo_root().join("docs")
}

/// Fails when a spec, a code or docs/errors.md changed without its generated page. `UPDATE_EXPECT=1`
/// regenerates the pages instead.
#[test]
fn the_generated_reference_pages_are_current() {
    let dir = docs();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let o = osiris(repo_root())
            .args(["docs", "generate", "--dir"])
            .arg(&dir)
            .output();
        assert_eq!(code(&o), 0, "{:?}", text(&o));
    }
    let o = osiris(repo_root())
        .args(["docs", "generate", "--check", "--dir"])
        .arg(&dir)
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(
        code(&o),
        0,
        "the generated docs are stale: run `osiris docs generate` (or this test with UPDATE_EXPECT=1)\n{stdout}{stderr}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

#[test]
fn docs_generate_check_names_stale_missing_and_left_over_pages_and_generate_fixes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs");
    copy_tree(&docs(), &dir);
    let page = dir.join("reference/components/filesystem.csv_extractor.md");
    std::fs::write(&page, "edited by hand\n").unwrap();
    std::fs::remove_file(dir.join("reference/errors/run.md")).unwrap();
    let gone = dir.join("reference/components/filesystem.gone.md");
    std::fs::write(
        &gone,
        format!(
            "{}\n# a component that no longer exists\n",
            std::fs::read_to_string(docs().join("reference/components/index.md"))
                .unwrap()
                .lines()
                .next()
                .unwrap()
        ),
    )
    .unwrap();
    let summary = dir.join("SUMMARY.md");
    let s = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(
        &summary,
        s.replace(
            "  - [mysql.writer](reference/components/mysql.writer.md)\n",
            "",
        ),
    )
    .unwrap();

    let o = osiris(tmp.path())
        .args(["docs", "generate", "--check"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 2, "{stderr}");
    for part in [
        "CLI-E008",
        "reference/components/filesystem.csv_extractor.md",
        "reference/errors/run.md",
        "reference/components/filesystem.gone.md (left over)",
        "SUMMARY.md",
        "osiris docs generate",
    ] {
        assert!(stderr.contains(part), "{part} in:\n{stderr}");
    }

    let o = osiris(tmp.path()).args(["docs", "generate"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert!(
        !gone.exists(),
        "a page of a component that is gone is removed"
    );
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("mysql.writer.md")
    );
    let o = osiris(tmp.path())
        .args(["docs", "generate", "--check"])
        .output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    for f in [
        "reference/components/filesystem.csv_extractor.md",
        "reference/errors/run.md",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.join(f)).unwrap(),
            std::fs::read_to_string(docs().join(f)).unwrap(),
            "{f} is generated the same way each time"
        );
    }
}

#[test]
fn a_component_page_has_modes_capabilities_every_field_secrets_examples_and_errors() {
    let page =
        std::fs::read_to_string(docs().join("reference/components/mysql.extractor.md")).unwrap();
    let spec: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("components/mysql.extractor/spec.yaml")).unwrap(),
    )
    .unwrap();
    for m in spec["modes"].as_array().unwrap() {
        assert!(
            page.contains(&format!("- `{}`", m.as_str().unwrap())),
            "mode {m}"
        );
    }
    for c in spec["capabilities"].as_object().unwrap().keys() {
        assert!(page.contains(&format!("| `{c}` |")), "capability {c}");
    }
    for (name, s) in spec["configSchema"]["properties"].as_object().unwrap() {
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}`")))
            .unwrap_or_else(|| panic!("no row for field {name}"));
        if let Some(d) = s.get("default") {
            assert!(row.contains(&format!("`{d}`")), "default of {name}: {row}");
        }
        for e in s["enum"].as_array().into_iter().flatten() {
            assert!(row.contains(&format!("`{e}`")), "enum of {name}: {row}");
        }
    }
    assert!(page.contains("| `password` (secret) |"), "the secret field");
    assert!(page.contains("- `/password`"));
    for ex in spec["examples"].as_array().unwrap() {
        assert!(page.contains(&format!("### {}", ex["title"].as_str().unwrap())));
    }
    for c in ["OML-E022", "OML-E040", "RUN-E004", "RUN-E005", "OML-E025"] {
        assert!(page.contains(&format!("[`{c}`]")), "error {c}");
    }
    let errors = std::fs::read_to_string(docs().join("reference/errors/run.md")).unwrap();
    assert!(errors.contains("## RUN-E004"));
    assert!(errors.contains("[`mysql.extractor`](../components/mysql.extractor.md)"));
}

/// mdBook refuses a SUMMARY.md entry whose file is missing (`create-missing = false`): checked here without the
/// mdbook binary.
#[test]
fn every_page_the_book_summary_names_exists_and_every_guide_is_in_it() {
    let summary = std::fs::read_to_string(docs().join("SUMMARY.md")).unwrap();
    let mut linked = Vec::new();
    for part in summary.split("](").skip(1) {
        let target = part.split(')').next().unwrap();
        assert!(
            docs().join(target).is_file(),
            "SUMMARY.md names `{target}`, which does not exist"
        );
        linked.push(target.to_string());
    }
    for e in std::fs::read_dir(docs()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "SUMMARY.md" {
            assert!(linked.contains(&name), "docs/{name} is not in SUMMARY.md");
        }
    }
    for section in [
        "# Tutorials",
        "# How-to guides",
        "# Reference",
        "# Explanation",
    ] {
        assert!(summary.contains(section), "{section}");
    }
    assert!(docs().join("book.toml").is_file());
}

/// Splits a command line as a POSIX shell would for the simple lines of a tutorial: words, '...' and "...".
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The commands of the ```sh blocks of a Markdown page, each with the exit code its `# exits N` comment names.
fn commands(md: &str) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh || line.trim().is_empty() {
            continue;
        }
        let (cmd, comment) = match line.find(" # ") {
            Some(i) => (&line[..i], &line[i + 3..]),
            None => (line, ""),
        };
        let exit = comment
            .trim()
            .strip_prefix("exits ")
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for part in cmd.split("&&") {
            out.push((part.trim().to_string(), exit));
        }
    }
    out
}

#[test]
fn the_quickstart_tutorial_runs_as_written() {
    let md = std::fs::read_to_string(docs().join("tutorials/quickstart.md")).unwrap();
    let cmds = commands(&md);
    assert!(cmds.len() >= 15, "{cmds:?}");
    let tmp = tempfile::tempdir().unwrap();
    let mut cwd = tmp.path().to_path_buf();
    let mut ran = Vec::new();
    for (cmd, exit) in &cmds {
        let w = words(cmd);
        let (stdout, stderr, got) = match w[0].as_str() {
            "cd" => {
                cwd = cwd.join(&w[1]);
                assert!(cwd.is_dir(), "`{cmd}`: no directory {}", cwd.display());
                continue;
            }
            "osiris" => {
                let o = osiris(&cwd).args(&w[1..]).output();
                let (a, b) = text(&o);
                (a, b, code(&o))
            }
            _ => {
                let o = std::process::Command::new("bash")
                    .args(["-c", cmd])
                    .current_dir(&cwd)
                    .output()
                    .unwrap();
                let (a, b) = text(&o);
                (a, b, code(&o))
            }
        };
        assert_eq!(
            got, *exit,
            "`{cmd}` (after {ran:?}) exited {got}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        ran.push(cmd.clone());
    }
    // What the tutorial says happened, happened.
    let project = tmp.path().join("my-project");
    assert!(project.join("output/summary.csv").is_file());
    let report = std::fs::read_to_string(project.join("quickstart-report.html")).unwrap();
    assert!(report.contains("data-status=\"succeeded\""));
    let failed = std::fs::read_to_string(project.join("failed-report.html")).unwrap();
    assert!(failed.contains("data-status=\"failed\""));
    assert!(failed.contains("CSV-OPEN"));
    let o = osiris(&project)
        .args(["runs", "list", "--format", "json"])
        .output();
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let statuses: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["succeeded", "failed", "succeeded"],
        "newest first"
    );
}
