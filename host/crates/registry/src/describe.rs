//! Turns JSON Schema validation errors into problems people can act on: what is wrong in words, where (a JSON
//! Pointer), and how to fix it (allowed values, did-you-mean, the field's own description). Raw validator
//! output never reaches a user.
//!
//! Used for spec files (codes `SPEC-E01x`) and for step configurations (codes `CFG-E00x`).

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use osiris_core::codes::Code;
use osiris_core::diag::did_you_mean;
use serde_json::Value;

/// What kind of mistake a schema error is; each kind has one stable code per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Unknown,
    Type,
    NotAllowed,
    Format,
    Range,
    Duplicate,
    NoAlternative,
    Other,
}

impl Kind {
    pub fn spec_code(self) -> Code {
        match self {
            Kind::Missing => Code::SPEC_E010,
            Kind::Unknown => Code::SPEC_E011,
            Kind::Type => Code::SPEC_E012,
            Kind::NotAllowed => Code::SPEC_E013,
            Kind::Format => Code::SPEC_E014,
            Kind::Range => Code::SPEC_E015,
            Kind::Duplicate => Code::SPEC_E016,
            Kind::NoAlternative => Code::SPEC_E017,
            Kind::Other => Code::SPEC_E019,
        }
    }

    pub fn config_code(self) -> Code {
        match self {
            Kind::Unknown => Code::CFG_E001,
            Kind::Missing => Code::CFG_E002,
            Kind::Type => Code::CFG_E003,
            Kind::NotAllowed => Code::CFG_E004,
            Kind::Format => Code::CFG_E005,
            Kind::Range => Code::CFG_E006,
            Kind::Duplicate => Code::CFG_E007,
            Kind::NoAlternative => Code::CFG_E008,
            Kind::Other => Code::CFG_E009,
        }
    }
}

/// One problem found by a schema, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    /// JSON Pointer of the offending node; for a missing key, the mapping that lacks it.
    pub pointer: String,
    pub message: String,
    pub help: Option<String>,
    /// Point at the key of `pointer` (an unknown key) rather than at its value.
    pub at_key: bool,
    /// Short label under the source snippet.
    pub label: String,
}

/// How values may be quoted in messages: `hide(pointer)` is true for secret fields, whose values never
/// appear in a message.
pub struct Ctx<'a> {
    pub root_schema: &'a Value,
    pub instance: &'a Value,
    /// Words for the thing being checked, e.g. "key" (spec files) or "field" (step configurations).
    pub noun: &'a str,
    pub hide: &'a dyn Fn(&str) -> bool,
}

/// Describes every error of one validation, collapsing `anyOf`/`oneOf` onto the most plausible branch.
pub fn describe_all<'e>(
    ctx: &Ctx<'_>,
    errors: impl IntoIterator<Item = ValidationError<'e>>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for e in errors {
        describe(ctx, &e, &mut out);
    }
    // the same problem may be reached through several branches
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert((p.pointer.clone(), p.message.clone())));
    out
}

fn describe(ctx: &Ctx<'_>, e: &ValidationError<'_>, out: &mut Vec<Problem>) {
    let pointer = e.instance_path().as_str().to_string();
    let instance = e.instance();
    let shown = |v: &Value| shown(ctx, &pointer, v);
    let schemas = schemas_at(ctx.root_schema, ctx.instance, &pointer);
    let field = field_name(&pointer);
    let mk = |kind: Kind, message: String, help: Option<String>, label: &str| Problem {
        kind,
        pointer: pointer.clone(),
        message,
        help,
        at_key: false,
        label: label.to_string(),
    };
    let p = match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            unknown_properties(ctx, &pointer, &schemas, unexpected, out);
            return;
        }
        ValidationErrorKind::Required { property } => {
            required(&mk, ctx, &pointer, &schemas, property)
        }
        ValidationErrorKind::Type { kind } => type_mismatch(&mk, ctx, &pointer, instance, kind),
        ValidationErrorKind::Enum { options } => not_in_enum(&mk, ctx, &pointer, instance, options),
        ValidationErrorKind::Constant { expected_value } => mk(
            Kind::NotAllowed,
            format!(
                "{} must be `{}`, found {}",
                what(&pointer, ctx.noun),
                short(expected_value),
                shown(instance)
            ),
            Some(format!("write `{}`", short(expected_value))),
            "not the allowed value",
        ),
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => {
            wrong_format(&mk, ctx, &pointer, &schemas, e, instance)
        }
        ValidationErrorKind::Minimum { limit } => {
            range(mk, &pointer, ctx, instance, &format!("at least {limit}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            range(mk, &pointer, ctx, instance, &format!("at most {limit}"))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => range(
            mk,
            &pointer,
            ctx,
            instance,
            &format!("greater than {limit}"),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            range(mk, &pointer, ctx, instance, &format!("less than {limit}"))
        }
        ValidationErrorKind::MultipleOf { multiple_of } => range(
            mk,
            &pointer,
            ctx,
            instance,
            &format!("a multiple of {multiple_of}"),
        ),
        ValidationErrorKind::MinLength { limit } => {
            if *limit == 1 {
                mk(
                    Kind::Range,
                    format!("{} must not be empty", what(&pointer, ctx.noun)),
                    Some("write a non-empty value".to_string()),
                    "empty",
                )
            } else {
                length(
                    mk,
                    &pointer,
                    ctx,
                    &format!("at least {limit} characters long"),
                )
            }
        }
        ValidationErrorKind::MaxLength { limit } => length(
            mk,
            &pointer,
            ctx,
            &format!("at most {limit} characters long"),
        ),
        ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::MinProperties { .. }
        | ValidationErrorKind::MaxProperties { .. }
        | ValidationErrorKind::UniqueItems => {
            collection_size(&mk, ctx, &pointer, e.kind(), instance)
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            if let Some(branch) = best_branch(context, &pointer) {
                for inner in branch {
                    describe(ctx, inner, out);
                }
                return;
            }
            mk(
                Kind::NoAlternative,
                format!(
                    "{} does not match any of the accepted forms",
                    what(&pointer, ctx.noun)
                ),
                description_and_examples(&schemas).0,
                "no accepted form matches",
            )
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => mk(
            Kind::NoAlternative,
            format!(
                "{} matches more than one of the exclusive forms",
                what(&pointer, ctx.noun)
            ),
            description_and_examples(&schemas).0,
            "ambiguous",
        ),
        ValidationErrorKind::FalseSchema => mk(
            Kind::NotAllowed,
            format!("{} is not allowed here", what(&pointer, ctx.noun)),
            Some(format!(
                "remove `{field}`; it cannot be combined with the other {}s set here",
                ctx.noun
            )),
            "not allowed here",
        ),
        ValidationErrorKind::Not { schema } => negated(&mk, ctx, &pointer, schema),
        ValidationErrorKind::Contains => mk(
            Kind::Other,
            format!(
                "{} contains no item of the required kind",
                what(&pointer, ctx.noun)
            ),
            None,
            "no matching item",
        ),
        _ => mk(
            Kind::Other,
            format!("{} is not valid: {}", what(&pointer, ctx.noun), e.masked()),
            None,
            "invalid",
        ),
    };
    out.push(p);
}

/// `minItems`, `maxItems`, `minProperties`, `maxProperties` and `uniqueItems`: how many, or which repeats.
fn collection_size(
    mk: Mk<'_>,
    ctx: &Ctx<'_>,
    pointer: &str,
    kind: &ValidationErrorKind,
    instance: &Value,
) -> Problem {
    match kind {
        ValidationErrorKind::MinItems { limit } => mk(
            Kind::Range,
            format!(
                "{} needs at least {limit} item{}",
                what(pointer, ctx.noun),
                plural(*limit)
            ),
            Some("add items to the list".to_string()),
            "too few items",
        ),
        ValidationErrorKind::MaxItems { limit } => mk(
            Kind::Range,
            format!(
                "{} allows at most {limit} item{}",
                what(pointer, ctx.noun),
                plural(*limit)
            ),
            Some("remove items from the list".to_string()),
            "too many items",
        ),
        ValidationErrorKind::MinProperties { limit } => mk(
            Kind::Range,
            format!(
                "{} needs at least {limit} entr{}",
                what(pointer, ctx.noun),
                if *limit == 1 { "y" } else { "ies" }
            ),
            None,
            "too few entries",
        ),
        ValidationErrorKind::MaxProperties { limit } => mk(
            Kind::Range,
            format!(
                "{} allows at most {limit} entr{}",
                what(pointer, ctx.noun),
                if *limit == 1 { "y" } else { "ies" }
            ),
            None,
            "too many entries",
        ),
        ValidationErrorKind::UniqueItems => {
            let dup = instance.as_array().and_then(|a| {
                a.iter()
                    .enumerate()
                    .find_map(|(i, v)| a[..i].contains(v).then(|| short(v)))
            });
            mk(
                Kind::Duplicate,
                format!("{} lists the same item twice", what(pointer, ctx.noun)),
                Some(match dup {
                    Some(d) if !(ctx.hide)(pointer) => format!("remove the second `{d}`"),
                    _ => "remove the duplicate".to_string(),
                }),
                "duplicate items",
            )
        }
        _ => mk(
            Kind::Other,
            format!("{} has the wrong size", what(pointer, ctx.noun)),
            None,
            "wrong size",
        ),
    }
}

/// A value as a message shows it: `` `value` ``, or "the value" where the pointer is a secret.
fn shown(ctx: &Ctx<'_>, pointer: &str, v: &Value) -> String {
    if (ctx.hide)(pointer) {
        "the value".to_string()
    } else {
        format!("`{}`", short(v))
    }
}

/// Builds a [`Problem`] at the error's pointer: (kind, message, help, label).
type Mk<'a> = &'a dyn Fn(Kind, String, Option<String>, &str) -> Problem;

/// `additionalProperties` / `unevaluatedProperties`: one problem per unknown key, at the key.
fn unknown_properties(
    ctx: &Ctx<'_>,
    pointer: &str,
    schemas: &[&Value],
    unexpected: &[String],
    out: &mut Vec<Problem>,
) {
    let allowed = allowed_properties(schemas);
    let ext = schemas.iter().any(|s| {
        s.get("patternProperties")
            .and_then(|p| p.get("^x-"))
            .is_some()
    });
    for key in unexpected {
        let mut help = match did_you_mean(key, allowed.iter().map(String::as_str)) {
            Some(m) => format!("did you mean `{m}`?"),
            None if allowed.is_empty() => format!("remove `{key}`"),
            None => format!("remove `{key}` or use one of: {}", list(&allowed)),
        };
        if ext {
            help.push_str(" (extension keys must start with `x-`)");
        }
        out.push(Problem {
            kind: Kind::Unknown,
            pointer: format!("{pointer}/{}", osiris_core::yaml::escape_token(key)),
            message: format!("unknown {} `{key}`{}", ctx.noun, in_where(pointer)),
            help: Some(help),
            at_key: true,
            label: format!("not a known {}", ctx.noun),
        });
    }
}

/// `required`: the missing field, with its description as the help.
fn required(
    mk: Mk<'_>,
    ctx: &Ctx<'_>,
    pointer: &str,
    schemas: &[&Value],
    property: &Value,
) -> Problem {
    let name = property.as_str().unwrap_or_default().to_string();
    let desc = schemas
        .iter()
        .find_map(|s| {
            s.get("properties")
                .and_then(|p| p.get(&name))
                .and_then(|p| p.get("description"))
        })
        .and_then(Value::as_str)
        .map(|d| format!(" — {}", first_sentence(d)))
        .unwrap_or_default();
    mk(
        Kind::Missing,
        format!(
            "missing required {} `{name}`{}",
            ctx.noun,
            in_where(pointer)
        ),
        Some(format!("add `{name}:`{desc}")),
        &format!("`{name}` missing here"),
    )
}

/// `type`: what was expected and found, and how to write it.
fn type_mismatch(
    mk: Mk<'_>,
    ctx: &Ctx<'_>,
    pointer: &str,
    instance: &Value,
    kind: &TypeKind,
) -> Problem {
    let field = field_name(pointer);
    let expected: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
    };
    let expected = expected
        .iter()
        .map(|t| article(t))
        .collect::<Vec<_>>()
        .join(" or ");
    let found = type_of(instance);
    let help =
        if expected.contains("string") && matches!(instance, Value::Number(_) | Value::Bool(_)) {
            if (ctx.hide)(pointer) {
                "quote the value to make it a string".to_string()
            } else {
                format!(
                    "quote the value to make it a string: `{field}: \"{}\"`",
                    short(instance)
                )
            }
        } else if expected == "a boolean" {
            "write `true` or `false`, without quotes".to_string()
        } else if (expected == "an integer" || expected == "a number") && instance.is_string() {
            "write the number without quotes".to_string()
        } else if expected.contains("array") || expected.contains("list") {
            format!("write a list, e.g. `{field}: [a, b]` or one `- item` per line")
        } else if expected.contains("object") || expected.contains("mapping") {
            "write a mapping of `key: value` lines, indented under the key".to_string()
        } else {
            format!("write {expected} here")
        };
    mk(
        Kind::Type,
        format!(
            "{} must be {expected}, found {found} {}",
            what(pointer, ctx.noun),
            shown(ctx, pointer, instance)
        ),
        Some(help),
        &format!("expected {expected}"),
    )
}

/// `enum`: the allowed values, with a did-you-mean unless the value is secret.
fn not_in_enum(
    mk: Mk<'_>,
    ctx: &Ctx<'_>,
    pointer: &str,
    instance: &Value,
    options: &Value,
) -> Problem {
    let opts: Vec<String> = options
        .as_array()
        .map(|a| a.iter().map(short).collect())
        .unwrap_or_default();
    let mut help = String::new();
    if let Some(s) = instance.as_str()
        && !(ctx.hide)(pointer)
        && let Some(m) = did_you_mean(s, opts.iter().map(String::as_str))
    {
        help = format!("did you mean `{m}`? ");
    }
    help.push_str(&format!("allowed values: {}", list(&opts)));
    mk(
        Kind::NotAllowed,
        format!(
            "{} is not an allowed value for {}",
            shown(ctx, pointer, instance),
            what(pointer, ctx.noun)
        ),
        Some(help),
        "not an allowed value",
    )
}

/// `pattern` / `format`: the field's description and examples as the help, else the pattern or format.
fn wrong_format(
    mk: Mk<'_>,
    ctx: &Ctx<'_>,
    pointer: &str,
    schemas: &[&Value],
    e: &ValidationError<'_>,
    instance: &Value,
) -> Problem {
    let mut with_pattern: Vec<&Value> = schemas
        .iter()
        .copied()
        .filter(|s| s.get("pattern").is_some() || s.get("format").is_some())
        .collect();
    with_pattern.extend(schemas.iter().copied());
    let (desc, examples) = description_and_examples(&with_pattern);
    let help = match (desc, examples) {
        (Some(d), Some(x)) => format!("{d}; for example {x}"),
        (Some(d), None) => d,
        (None, Some(x)) => format!("for example {x}"),
        (None, None) => match e.kind() {
            ValidationErrorKind::Pattern { pattern } => {
                format!("the value must match the pattern `{pattern}`")
            }
            ValidationErrorKind::Format { format } => {
                format!("the value must be a valid `{format}`")
            }
            _ => String::new(),
        },
    };
    mk(
        Kind::Format,
        format!(
            "{} is not a valid value for {}",
            shown(ctx, pointer, instance),
            what(pointer, ctx.noun)
        ),
        Some(help),
        "wrong format",
    )
}

/// `not`: fields that cannot be set together, or a value that is not allowed.
fn negated(mk: Mk<'_>, ctx: &Ctx<'_>, pointer: &str, schema: &Value) -> Problem {
    let req: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("`{s}`"))
                .collect()
        })
        .unwrap_or_default();
    if req.len() > 1 {
        mk(
            Kind::NotAllowed,
            format!(
                "{} cannot be set together{}",
                req.join(" and "),
                in_where(pointer)
            ),
            Some("keep only one of them".to_string()),
            "conflicting fields",
        )
    } else {
        mk(
            Kind::NotAllowed,
            format!(
                "{} has a value that is not allowed",
                what(pointer, ctx.noun)
            ),
            None,
            "not allowed",
        )
    }
}

fn range(
    mk: impl Fn(Kind, String, Option<String>, &str) -> Problem,
    pointer: &str,
    ctx: &Ctx<'_>,
    instance: &Value,
    bound: &str,
) -> Problem {
    let found = if (ctx.hide)(pointer) {
        String::new()
    } else {
        format!(", found `{}`", short(instance))
    };
    mk(
        Kind::Range,
        format!("{} must be {bound}{found}", what(pointer, ctx.noun)),
        Some(format!("use a value {bound}")),
        "out of range",
    )
}

fn length(
    mk: impl Fn(Kind, String, Option<String>, &str) -> Problem,
    pointer: &str,
    ctx: &Ctx<'_>,
    bound: &str,
) -> Problem {
    mk(
        Kind::Range,
        format!("{} must be {bound}", what(pointer, ctx.noun)),
        Some(format!("use a value {bound}")),
        "wrong length",
    )
}

/// The branch of an `anyOf`/`oneOf` that most likely was meant: not rejected for its type at the
/// alternative's own node, then the one whose errors reach deepest, then the one with the fewest errors.
fn best_branch<'c>(
    context: &'c [Vec<ValidationError<'static>>],
    pointer: &str,
) -> Option<&'c Vec<ValidationError<'static>>> {
    let score = |b: &Vec<ValidationError<'static>>| {
        let type_at_root = b.iter().any(|e| {
            matches!(e.kind(), ValidationErrorKind::Type { .. })
                && e.instance_path().as_str() == pointer
        });
        let depth = b
            .iter()
            .map(|e| e.instance_path().as_str().matches('/').count())
            .max()
            .unwrap_or(0);
        (!type_at_root, depth, std::cmp::Reverse(b.len()))
    };
    let best = context
        .iter()
        .filter(|b| !b.is_empty())
        .max_by_key(|b| score(b))?;
    let all_type_at_root = context.iter().all(|b| {
        b.iter().any(|e| {
            matches!(e.kind(), ValidationErrorKind::Type { .. })
                && e.instance_path().as_str() == pointer
        })
    });
    if all_type_at_root { None } else { Some(best) }
}

/// Schemas that may apply to the instance node at `pointer` (following `$ref`, `allOf`/`anyOf`/`oneOf`,
/// `properties`, `patternProperties`, `additionalProperties`, `items`, `prefixItems`).
pub fn schemas_at<'s>(root: &'s Value, instance: &Value, pointer: &str) -> Vec<&'s Value> {
    let mut current = expand(root, root);
    let mut node = instance;
    for token in pointer.split('/').skip(1) {
        let key = osiris_core::yaml::unescape_token(token);
        let mut next = Vec::new();
        for s in &current {
            let child: Vec<&Value> = match node {
                Value::Array(_) => {
                    let idx: Option<usize> = key.parse().ok();
                    let prefix = idx.and_then(|i| s.get("prefixItems").and_then(|p| p.get(i)));
                    prefix.or_else(|| s.get("items")).into_iter().collect()
                }
                _ => {
                    if let Some(p) = s.get("properties").and_then(|p| p.get(&key)) {
                        vec![p]
                    } else {
                        let mut v: Vec<&Value> = s
                            .get("patternProperties")
                            .and_then(Value::as_object)
                            .map(|pp| {
                                pp.iter()
                                    .filter(|(pat, _)| simple_pattern_match(pat, &key))
                                    .map(|(_, sch)| sch)
                                    .collect()
                            })
                            .unwrap_or_default();
                        if v.is_empty()
                            && let Some(a) = s.get("additionalProperties").filter(|a| a.is_object())
                        {
                            v.push(a);
                        }
                        v
                    }
                }
            };
            for c in child {
                next.extend(expand(root, c));
            }
        }
        current = next;
        node = match node {
            Value::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .unwrap_or(&Value::Null),
            Value::Object(o) => o.get(&key).unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
        if current.is_empty() {
            break;
        }
    }
    current
}

/// A schema and everything it pulls in through `$ref` and the combinators.
fn expand<'s>(root: &'s Value, schema: &'s Value) -> Vec<&'s Value> {
    let mut out = Vec::new();
    let mut stack = vec![schema];
    let mut guard = 0;
    while let Some(s) = stack.pop() {
        guard += 1;
        if guard > 64 {
            break;
        }
        if !s.is_object() {
            continue;
        }
        out.push(s);
        if let Some(r) = s.get("$ref").and_then(Value::as_str)
            && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p))
        {
            stack.push(target);
        }
        for comb in ["allOf", "anyOf", "oneOf"] {
            if let Some(a) = s.get(comb).and_then(Value::as_array) {
                stack.extend(a.iter());
            }
        }
    }
    out
}

/// Enough of regex for the patterns used on property names here (`^x-`, `^prefix`): a leading-anchored
/// literal prefix. Anything else is treated as matching, which only widens the did-you-mean candidates.
fn simple_pattern_match(pattern: &str, key: &str) -> bool {
    match pattern.strip_prefix('^') {
        Some(lit)
            if lit
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_') =>
        {
            key.starts_with(lit)
        }
        _ => true,
    }
}

fn allowed_properties(schemas: &[&Value]) -> Vec<String> {
    let mut names: Vec<String> = schemas
        .iter()
        .filter_map(|s| s.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn description_and_examples(schemas: &[&Value]) -> (Option<String>, Option<String>) {
    let desc = schemas
        .iter()
        .find_map(|s| s.get("description").and_then(Value::as_str))
        .map(first_sentence);
    let ex = schemas
        .iter()
        .find_map(|s| s.get("examples").and_then(Value::as_array))
        .map(|a| {
            a.iter()
                .map(|v| format!("`{}`", short(v)))
                .collect::<Vec<_>>()
                .join(", ")
        });
    (desc, ex)
}

/// The first sentence of a description, without a trailing period, starting lower-case.
pub fn first_sentence(d: &str) -> String {
    let d = d.trim();
    let mut end = d.len();
    let mut from = 0;
    while let Some(i) = d[from..].find(". ").map(|i| i + from) {
        let before = &d[..i];
        if before.ends_with("e.g") || before.ends_with("i.e") || before.ends_with("etc") {
            from = i + 2;
            continue;
        }
        end = i + 1;
        break;
    }
    let s = d[..end].trim_end_matches('.').replace('\n', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) if c.clone().next().is_some_and(|n| n.is_lowercase()) => {
            f.to_lowercase().chain(c).collect()
        }
        _ => s,
    }
}

/// A value as short text for a message.
pub fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let s = s.replace('\n', "\\n");
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn article(t: &str) -> String {
    match t {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "integer" => "an integer".to_string(),
        "null" => "null".to_string(),
        other => format!("a {other}"),
    }
}

fn field_name(pointer: &str) -> String {
    pointer
        .rsplit('/')
        .next()
        .map(osiris_core::yaml::unescape_token)
        .unwrap_or_default()
}

/// "`version`", "item 2 of `modes`", "the document".
fn what(pointer: &str, noun: &str) -> String {
    if pointer.is_empty() {
        return if noun == "field" {
            "the configuration".to_string()
        } else {
            "the document".to_string()
        };
    }
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    match last.parse::<usize>() {
        Ok(i) if !parent.is_empty() => format!("item {} of `{}`", i + 1, dotted(parent)),
        _ => format!("`{}`", dotted(pointer)),
    }
}

/// A JSON Pointer as people write paths: `/examples/0/config/host` -> `examples[0].config.host`.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let t = osiris_core::yaml::unescape_token(token);
        if t.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{t}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&t);
        }
    }
    out
}

fn in_where(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" in `{}`", dotted(pointer))
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
