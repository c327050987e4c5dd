use super::*;
use osiris_core::codes::Code;
use osiris_core::secrets::Strategy;
use osiris_oml::Mode;
use std::cell::RefCell;
use std::sync::Arc;

/// Replies in order and records what it was sent.
struct Scripted {
    replies: RefCell<Vec<String>>,
    seen: RefCell<Vec<(String, Vec<Message>)>>,
}

impl Scripted {
    fn new(replies: &[&str]) -> Scripted {
        Scripted {
            replies: RefCell::new(replies.iter().rev().map(|s| s.to_string()).collect()),
            seen: RefCell::new(Vec::new()),
        }
    }
}

impl Model for Scripted {
    fn complete(&self, system: &str, messages: &[Message]) -> Result<String, Fail> {
        self.seen
            .borrow_mut()
            .push((system.to_string(), messages.to_vec()));
        Ok(self.replies.borrow_mut().pop().expect("a scripted reply"))
    }
}

const BAD: &str = "```yaml\noml_version: \"0.1.0\"\nname: copy\nsteps:\n  - id: read\n    component: supabase.extractor\n    mode: read\n    config:\n      connection: \"@supabase.main\"\n      table: users\n      colour: blue\n  - id: write\n    component: supabase.wrtier\n    mode: write\n    config:\n      connection: \"@supabase.backup\"\n      table: users\n```\n";
const GOOD: &str = "```yaml\noml_version: \"0.1.0\"\nname: copy\nsteps:\n  - id: read\n    component: supabase.extractor\n    mode: read\n    config:\n      connection: \"@supabase.main\"\n      table: users\n  - id: write\n    component: supabase.writer\n    mode: write\n    config:\n      connection: \"@supabase.backup\"\n      table: users\n```\n";

fn run(replies: &[&str], max: u32, redactor: Arc<Redactor>) -> (Outcome, Scripted) {
    let registry = Registry::builtin();
    let opts = Options {
        mode: Mode::Warn,
        profile: "default",
        profile_explicit: false,
        params: &[],
        env: &|_| None,
    };
    let check = Check {
        registry: &registry,
        options: &opts,
        file: "copy.yaml",
    };
    let model = Scripted::new(replies);
    let mut conv = Conversation::new(
        "CONTEXT\n",
        &["@supabase.main".to_string(), "@supabase.backup".to_string()],
        redactor,
    );
    let outcome = conv
        .ask(
            &model,
            "copy users to the backup project",
            &check,
            max,
            &mut |_| {},
        )
        .unwrap();
    (outcome, model)
}

fn redactor() -> Arc<Redactor> {
    Arc::new(Redactor::new(Strategy::Mask, "***"))
}

#[test]
fn repairs_with_the_diagnostics_and_stops_when_valid() {
    let (outcome, model) = run(&[BAD, GOOD, "unused"], 3, redactor());
    assert_eq!(outcome.attempts.len(), 2);
    let first = &outcome.attempts[0];
    assert!(!first.ok());
    assert_eq!(first.errors, 2, "{}", first.rendered);
    assert!(first.rendered.contains("OML-E104"), "{}", first.rendered);
    let valid = outcome.valid().expect("the second attempt is valid");
    assert_eq!(valid.number, 2);
    assert_eq!(valid.name.as_deref(), Some("copy"));
    assert!(!valid.manifest_hash.as_deref().unwrap().is_empty());
    let seen = model.seen.borrow();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].0.starts_with("You write data pipelines"));
    assert!(seen[0].0.contains("CONTEXT\n"));
    assert!(seen[0].0.contains("@supabase.main, @supabase.backup"));
    // the second request: prompt, first reply, then the first reply's diagnostics
    let second = &seen[1].1;
    assert_eq!(second.len(), 3);
    assert_eq!(second[1].content, BAD);
    assert_eq!(second[2].role, Role::User);
    assert!(
        second[2].content.contains("`supabase.wrtier`"),
        "{}",
        second[2].content
    );
    assert!(
        second[2].content.contains("supabase.writer"),
        "{}",
        second[2].content
    );
    assert!(
        second[2].content.contains("colour"),
        "{}",
        second[2].content
    );
    assert!(
        second[2].content.contains("copy.yaml:"),
        "{}",
        second[2].content
    );
}

#[test]
fn never_valid_keeps_every_attempt() {
    let (outcome, model) = run(&[BAD, "no yaml here", BAD], 3, redactor());
    assert!(outcome.valid().is_none());
    assert_eq!(outcome.attempts.len(), 3);
    assert_eq!(outcome.attempts[1].diagnostics[0].code, Code::LLM_E002);
    let seen = model.seen.borrow();
    assert!(seen[2].1[4].content.contains("holds no pipeline"));
}

#[test]
fn known_secrets_never_reach_the_model() {
    let r = redactor();
    r.add_secrets(["hunter2-planted-secret"]);
    let registry = Registry::builtin();
    let opts = Options {
        mode: Mode::Warn,
        profile: "default",
        profile_explicit: false,
        params: &[],
        env: &|_| None,
    };
    let check = Check {
        registry: &registry,
        options: &opts,
        file: "copy.yaml",
    };
    let model = Scripted::new(&[GOOD]);
    let mut conv = Conversation::new("CONTEXT\n", &[], r);
    conv.ask(
        &model,
        "the password is hunter2-planted-secret",
        &check,
        1,
        &mut |_| {},
    )
    .unwrap();
    let seen = model.seen.borrow();
    assert!(!seen[0].1[0].content.contains("hunter2-planted-secret"));
    assert!(seen[0].0.contains("No connections are configured"));
}
