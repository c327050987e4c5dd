//! `osiris component new NAME`: renders templates/component (the cargo-generate template) into a new plugin
//! crate, without cargo-generate.
//!
//! The renderer supports exactly the Liquid subset the template uses: `{{ var }}`,
//! `{% if var == "text" %}` / `{% elsif var == "text" %}` / `{% else %}` / `{% endif %}` (also `!=`), and
//! `{% raw %}...{% endraw %}` (copied verbatim). Anything else is an error, so a template change that needs more
//! fails the tests instead of producing a half-rendered crate.

use clap::{Args, Subcommand, ValueEnum};
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The template files, carried by the binary: (path in the generated crate, template text).
pub const TEMPLATE_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../templates/component/Cargo.toml"),
    ),
    (
        "spec.yaml",
        include_str!("../../../../templates/component/spec.yaml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../templates/component/src/lib.rs"),
    ),
    (
        "tests/component.rs",
        include_str!("../../../../templates/component/tests/component.rs"),
    ),
    (
        "README.md",
        include_str!("../../../../templates/component/README.md"),
    ),
    (
        ".github/workflows/ci.yml",
        include_str!("../../../../templates/component/.github/workflows/ci.yml"),
    ),
    (
        ".gitignore",
        include_str!("../../../../templates/component/.gitignore"),
    ),
];

#[derive(Subcommand, Debug)]
pub enum ComponentCmd {
    /// Create a new component plugin crate from the built-in template.
    New(NewArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Extractor,
    Writer,
    Processor,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Extractor => "extractor",
            Role::Writer => "writer",
            Role::Processor => "processor",
        }
    }
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The component name `family.role` (e.g. `shopify.extractor`), or just `family` with `--role`.
    /// The crate is named `family-role` (`_` becomes `-`).
    pub name: String,
    /// What the component does; may be left out when NAME ends in `.extractor`, `.writer` or `.processor`.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// Directory to create (default: `./<crate name>`); must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Depend on a local osiris-plugin-sdk checkout instead of the published crate.
    #[arg(long, value_name = "PATH")]
    pub sdk_path: Option<PathBuf>,
    /// One-line description (goes into Cargo.toml, spec.yaml and the README).
    #[arg(long, default_value = "An osiris component")]
    pub description: String,
    /// Author (Cargo.toml `authors`).
    #[arg(long, default_value = "unknown")]
    pub author: String,
}

pub fn run(c: ComponentCmd) -> CmdResult {
    match c {
        ComponentCmd::New(a) => new(a),
    }
}

fn usage(message: String) -> Fail {
    Fail::new(Exit::Validation, format!("error: {message}"))
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Splits NAME into (family, role).
fn parse_name(name: &str, role: Option<Role>) -> Result<(String, Role), Fail> {
    let (family, named_role) = match name.split_once('.') {
        Some((family, r)) => {
            let parsed = Role::from_str(r, false).map_err(|_| {
                usage(format!(
                    "`{name}`: the part after `.` must be `extractor`, `writer` or `processor` (got `{r}`)\n  \
                     help: give the component name as `family.role`, e.g. `shopify.extractor`, or the family alone with `--role`"
                ))
            })?;
            (family, Some(parsed))
        }
        None => (name, None),
    };
    if !is_ident(family) {
        return Err(usage(format!(
            "`{family}` is not a valid component family: use lower-case letters, digits and `_`, starting with a letter\n  \
             help: e.g. `osiris component new shopify.extractor`"
        )));
    }
    let role = match (named_role, role) {
        (Some(a), Some(b)) if a != b => {
            return Err(usage(format!(
                "`{name}` names the role `{}` but `--role {}` was given\n  help: drop `--role` or make them agree",
                a.as_str(),
                b.as_str()
            )));
        }
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => {
            return Err(usage(format!(
                "no role for `{name}`\n  help: add `--role extractor|writer|processor`, or name it `{name}.extractor`"
            )));
        }
    };
    Ok((family.to_string(), role))
}

fn check_text(what: &str, value: &str) -> Result<(), Fail> {
    if value
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(usage(format!(
            "`--{what}` must be one line without `\"` or `\\` (it is written into Cargo.toml and spec.yaml)"
        )));
    }
    Ok(())
}

/// A TOML basic-string body for a path.
fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn new(a: NewArgs) -> CmdResult {
    let (family, role) = parse_name(&a.name, a.role)?;
    check_text("description", &a.description)?;
    check_text("author", &a.author)?;
    let project = format!("{family}-{}", role.as_str()).replace('_', "-");
    let crate_name = project.replace('-', "_");
    let sdk_path = match &a.sdk_path {
        None => String::new(),
        Some(p) => {
            let abs = std::fs::canonicalize(p)
                .map_err(|e| usage(format!("`--sdk-path {}`: {e}", p.display())))?;
            let manifest = std::fs::read_to_string(abs.join("Cargo.toml")).unwrap_or_default();
            if !manifest.contains("name = \"osiris-plugin-sdk\"") {
                return Err(usage(format!(
                    "`--sdk-path {}` is not the osiris-plugin-sdk crate (no Cargo.toml naming `osiris-plugin-sdk` there)\n  \
                     help: point it at the `plugin-sdk` directory of an osiris checkout",
                    p.display()
                )));
            }
            toml_path(&abs)
        }
    };
    let sdk = semver::Version::parse(osiris_plugin_sdk::SDK_VERSION)
        .map(|v| format!("{}.{}", v.major, v.minor))
        .unwrap_or_else(|_| osiris_plugin_sdk::SDK_VERSION.to_string());
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("family", family.clone()),
        ("role", role.as_str().to_string()),
        ("description", a.description.clone()),
        ("author", a.author.clone()),
        ("project-name", project.clone()),
        ("crate_name", crate_name.clone()),
        ("sdk_path", sdk_path),
        ("sdk_version", sdk),
    ]);
    let dir = a.path.clone().unwrap_or_else(|| PathBuf::from(&project));
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(usage(format!(
                "`{}` already exists and is not empty\n  help: choose another `--path`, or remove it",
                dir.display()
            )));
        }
    }
    // Render everything first: a template problem leaves nothing behind.
    let mut rendered = Vec::new();
    for (file, text) in TEMPLATE_FILES {
        let out = render(text, &vars).map_err(|e| {
            Fail::new(
                Exit::Internal,
                format!("internal error (a bug, please report it): template `{file}`: {e}"),
            )
        })?;
        rendered.push((*file, out));
    }
    for (file, text) in &rendered {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| usage(format!("cannot create `{}`: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| usage(format!("cannot write `{}`: {e}", path.display())))?;
    }
    let component = format!("{family}.{}", role.as_str());
    outln!(
        "created {} (crate `{project}`, component `{component}`, entry `osiris_ocp_{crate_name}`)",
        dir.display()
    );
    outln!();
    outln!("next:");
    outln!("  cd {}", dir.display());
    outln!("  cargo test");
    outln!("  osiris plugins pack --manifest-path . --out dist/{project}");
    outln!("  osiris plugins sign dist/{project} --key signing.key --key-id <id>");
    outln!("  osiris plugins install dist/{project}");
    Ok(Exit::Ok)
}

#[derive(Debug)]
struct Frame {
    /// The enclosing block outputs.
    parent: bool,
    /// A branch of this `if` was already taken.
    taken: bool,
    /// The current branch outputs.
    active: bool,
}

/// Renders `template` with `vars` (see the module docs for the supported subset).
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut rest = template;
    let line_of = |rest: &str| {
        template[..template.len() - rest.len()]
            .lines()
            .count()
            .max(1)
    };
    loop {
        let next = match (rest.find("{{"), rest.find("{%")) {
            (None, None) => None,
            (Some(a), None) => Some(a),
            (None, Some(b)) => Some(b),
            (Some(a), Some(b)) => Some(a.min(b)),
        };
        let active = stack.last().is_none_or(|f| f.active);
        let Some(at) = next else {
            if active {
                out.push_str(rest);
            }
            break;
        };
        if active {
            out.push_str(&rest[..at]);
        }
        rest = &rest[at..];
        let line = line_of(rest);
        if let Some(after) = rest.strip_prefix("{{") {
            let end = after
                .find("}}")
                .ok_or_else(|| format!("line {line}: `{{{{` without `}}}}`"))?;
            let name = after[..end].trim();
            let value = vars
                .get(name)
                .ok_or_else(|| format!("line {line}: unknown variable `{name}`"))?;
            if active {
                out.push_str(value);
            }
            rest = &after[end + 2..];
            continue;
        }
        let after = &rest[2..];
        let end = after
            .find("%}")
            .ok_or_else(|| format!("line {line}: `{{%` without `%}}`"))?;
        let tag = after[..end].trim();
        rest = &after[end + 2..];
        let (word, args) = tag.split_once(' ').unwrap_or((tag, ""));
        match word {
            "raw" => {
                let close = rest.find("{% endraw %}").ok_or_else(|| {
                    format!("line {line}: `{{% raw %}}` without `{{% endraw %}}`")
                })?;
                if active {
                    out.push_str(&rest[..close]);
                }
                rest = &rest[close + "{% endraw %}".len()..];
            }
            "if" => {
                let cond = condition(args, vars).map_err(|e| format!("line {line}: {e}"))?;
                stack.push(Frame {
                    parent: active,
                    taken: cond,
                    active: active && cond,
                });
            }
            "elsif" => {
                let cond = condition(args, vars).map_err(|e| format!("line {line}: {e}"))?;
                let f = stack
                    .last_mut()
                    .ok_or_else(|| format!("line {line}: `elsif` outside `if`"))?;
                f.active = f.parent && !f.taken && cond;
                f.taken |= cond;
            }
            "else" => {
                let f = stack
                    .last_mut()
                    .ok_or_else(|| format!("line {line}: `else` outside `if`"))?;
                f.active = f.parent && !f.taken;
                f.taken = true;
            }
            "endif" => {
                stack
                    .pop()
                    .ok_or_else(|| format!("line {line}: `endif` outside `if`"))?;
            }
            other => return Err(format!("line {line}: unsupported tag `{other}`")),
        }
    }
    if !stack.is_empty() {
        return Err("an `if` is not closed by `endif`".to_string());
    }
    Ok(out)
}

/// `var == "text"` or `var != "text"`.
fn condition(args: &str, vars: &BTreeMap<&str, String>) -> Result<bool, String> {
    let (name, op, value) = if let Some((n, v)) = args.split_once("==") {
        (n, true, v)
    } else if let Some((n, v)) = args.split_once("!=") {
        (n, false, v)
    } else {
        return Err(format!("unsupported condition `{args}`"));
    };
    let name = name.trim();
    let value = value.trim();
    let literal = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(|| format!("condition `{args}`: compare with a quoted string"))?;
    let actual = vars
        .get(name)
        .ok_or_else(|| format!("unknown variable `{name}`"))?;
    Ok((actual == literal) == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(role: &str) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("family", "acme".to_string()),
            ("role", role.to_string()),
            ("description", "d".to_string()),
            ("author", "a".to_string()),
            ("project-name", format!("acme-{role}")),
            ("crate_name", format!("acme_{role}")),
            ("sdk_path", String::new()),
            ("sdk_version", "0.1".to_string()),
        ])
    }

    #[test]
    fn renders_variables_branches_and_raw() {
        let t = "a {{family}}{% if role == \"writer\" %} W{% elsif role == \"processor\" %} P{% else %} E{% endif %} {% raw %}${{ x }}{% endraw %}";
        assert_eq!(render(t, &vars("writer")).unwrap(), "a acme W ${{ x }}");
        assert_eq!(render(t, &vars("processor")).unwrap(), "a acme P ${{ x }}");
        assert_eq!(render(t, &vars("extractor")).unwrap(), "a acme E ${{ x }}");
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        assert!(
            render("{{ nope }}", &vars("writer"))
                .unwrap_err()
                .contains("unknown variable `nope`")
        );
        assert!(
            render("{% for x in y %}", &vars("writer"))
                .unwrap_err()
                .contains("unsupported tag `for`")
        );
        assert!(
            render("{% if role == \"x\" %}", &vars("writer"))
                .unwrap_err()
                .contains("not closed")
        );
    }

    #[test]
    fn every_template_file_renders_for_every_role() {
        for role in ["extractor", "writer", "processor"] {
            for (file, text) in TEMPLATE_FILES {
                let out = render(text, &vars(role)).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert!(!out.contains("{%"), "{file} ({role}) keeps a tag");
                if *file != ".github/workflows/ci.yml" {
                    assert!(!out.contains("{{"), "{file} ({role}) keeps `{{{{`");
                }
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            parse_name("shopify.extractor", None).unwrap(),
            ("shopify".to_string(), Role::Extractor)
        );
        assert_eq!(
            parse_name("shop_x", Some(Role::Writer)).unwrap(),
            ("shop_x".to_string(), Role::Writer)
        );
        assert!(parse_name("shopify", None).is_err());
        assert!(parse_name("Shopify.extractor", None).is_err());
        assert!(parse_name("shopify.reader", None).is_err());
        assert!(parse_name("shopify.writer", Some(Role::Extractor)).is_err());
    }
}
