//! `osiris init`: writes a new project (configuration, connections, a quickstart pipeline and its data).

use super::Global;
use osiris_core::codes::Code;
use osiris_core::diag::Diagnostic;
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Directory to initialise (created when missing).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Every file `osiris init` writes: (path relative to the project directory, content).
/// The texts live in `host/crates/cli/src/templates/`.
pub const PROJECT_FILES: &[(&str, &str)] = &[
    ("osiris.yaml", include_str!("templates/osiris.yaml")),
    (
        "osiris_connections.yaml",
        include_str!("templates/osiris_connections.yaml"),
    ),
    (
        "pipelines/quickstart.yaml",
        include_str!("templates/quickstart.yaml"),
    ),
    ("data/orders.csv", include_str!("templates/orders.csv")),
    (".gitignore", include_str!("templates/gitignore")),
];

pub fn run(_g: &Global, a: InitArgs) -> CmdResult {
    let written = write_project(&a.path, a.force)?;
    for p in &written {
        outln!("created {}", p.display());
    }
    let cd = if a.path == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", a.path.display())
    };
    errln!(
        "next: {cd}osiris compile pipelines/quickstart.yaml && osiris run pipelines/quickstart.yaml"
    );
    Ok(Exit::Ok)
}

/// Writes the project files into `dir` (created when missing) and returns the paths written.
/// Without `force`, nothing is written when any of the files exists (exit 2, naming them all).
pub fn write_project(dir: &Path, force: bool) -> Result<Vec<PathBuf>, Fail> {
    let existing: Vec<PathBuf> = PROJECT_FILES
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() && !force {
        let names = existing
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let d = Diagnostic::error(
            Code::CLI_E003,
            format!("refusing to overwrite existing files: {names}"),
        )
        .help(
            "use `--force` to overwrite them, or initialise another directory: `osiris init DIR`",
        );
        return Err(Fail::new(Exit::Validation, d.render(None)));
    }
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Fail::new(
            Exit::Validation,
            Diagnostic::error(
                Code::CLI_E004,
                format!("cannot {what} `{}`: {e}", p.display()),
            )
            .help("check that the directory is writable, or choose another one: `osiris init DIR`")
            .render(None),
        )
    };
    let mut written = Vec::with_capacity(PROJECT_FILES.len());
    for (rel, content) in PROJECT_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| io("write", &path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_the_project_config_has_defaults() {
        let (_, cfg) = PROJECT_FILES[0];
        assert_eq!(
            osiris_core::config::ProjectConfig::parse("osiris.yaml", cfg).unwrap(),
            osiris_core::config::ProjectConfig::default()
        );
        for (rel, text) in PROJECT_FILES.iter().filter(|(r, _)| r.ends_with(".yaml")) {
            let v: serde_json::Value =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(v.is_object(), "{rel}");
        }
        let (_, conns) = PROJECT_FILES[1];
        assert!(
            !conns
                .lines()
                .any(|l| l.contains("password:") && !l.contains("${")),
            "secrets only as ${{ENV}}"
        );
    }

    #[test]
    fn the_quickstart_pipeline_uses_known_components_with_valid_configs() {
        let reg = osiris_registry::Registry::builtin();
        let (_, text) = PROJECT_FILES[2];
        let v: serde_json::Value = serde_yaml::from_str(text).unwrap();
        assert_eq!(v["oml_version"], "0.1.0");
        let steps = v["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        for s in steps {
            let name = s["component"].as_str().unwrap();
            assert!(
                osiris_runner::modules::linked_components().contains(&name),
                "{name} runs out of the box"
            );
            let problems = reg.validate_config(name, &s["config"]);
            assert!(problems.is_empty(), "{name}: {problems:#?}");
        }
        let (_, csv) = PROJECT_FILES[3];
        assert_eq!(csv.lines().next(), Some("id,customer,amount,created_at"));
        assert_eq!(csv.lines().count(), 21);
    }
}
