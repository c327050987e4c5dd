use super::*;
use serde_json::json;

fn conns(text: &str) -> Connections {
    let mut c = Connections::default();
    c.merge_text("osiris_connections.yaml", text, Origin::ConnectionsFile)
        .unwrap();
    c
}

const FILE: &str = r#"
version: "1.0"
connections:
  mysql:
    primary:
      default: true
      host: db.example
      password: ${OSIRIS_TEST_SECRETS_PW}
      port: 3306
    replica:
      host: ${OSIRIS_TEST_SECRETS_UNSET:-replica.example}
  filesystem:
    default:
      base_dir: data
"#;

#[test]
fn default_alias_and_substitution() {
    // SAFETY: test-only variable names, not read by other tests.
    unsafe { std::env::set_var("OSIRIS_TEST_SECRETS_PW", "s3cr3t-value") };
    let c = conns(FILE);
    let r = c.resolve("@mysql").unwrap();
    assert_eq!(r.alias, "primary");
    assert_eq!(
        r.fields,
        json!({"host": "db.example", "password": "s3cr3t-value", "port": 3306})
    );
    assert_eq!(r.secret_values, vec!["s3cr3t-value".to_string()]);
    let r = c.resolve("@mysql.replica").unwrap();
    assert_eq!(r.fields["host"], "replica.example");
    assert_eq!(c.resolve("@filesystem").unwrap().alias, "default");
}

#[test]
fn missing_variable_names_family_alias_field_and_variable() {
    let c = conns(
        "version: '1.0'\nconnections:\n  pg:\n    main:\n      password: ${OSIRIS_TEST_SECRETS_NEVER_SET}\n",
    );
    let e = c.resolve("@pg.main").unwrap_err();
    assert_eq!(e.exit, Exit::Config);
    for part in [
        "`@pg.main`",
        "`password`",
        "`OSIRIS_TEST_SECRETS_NEVER_SET`",
    ] {
        assert!(e.message.contains(part), "{}", e.message);
    }
}

#[test]
fn unknown_alias_lists_aliases() {
    let c = conns(FILE);
    let e = c.resolve("@mysql.nope").unwrap_err();
    assert!(
        e.message.contains("`primary`") && e.message.contains("`replica`"),
        "{}",
        e.message
    );
    let e = c.resolve("@postgres.x").unwrap_err();
    assert!(e.message.contains("`postgres`"), "{}", e.message);
}

#[test]
fn precedence_secrets_file_over_env_over_connections_file() {
    let mut c = conns(FILE);
    c.merge_env(
        vec![
            (
                "OSIRIS_CONN__MYSQL__PRIMARY__HOST".to_string(),
                "env-host".to_string(),
            ),
            (
                "OSIRIS_CONN__MYSQL__PRIMARY__PASSWORD".to_string(),
                "env-password".to_string(),
            ),
        ]
        .into_iter(),
    );
    c.merge_text(
        "secrets.yaml",
        "connections:\n  mysql:\n    primary:\n      password: file-password\n",
        Origin::SecretsFile,
    )
    .unwrap();
    let r = c.resolve("@mysql.primary").unwrap();
    assert_eq!(r.fields["host"], "env-host");
    assert_eq!(r.fields["password"], "file-password");
}

#[test]
fn no_default_is_an_error_listing_aliases() {
    let c = conns("connections:\n  pg:\n    a: {host: x}\n    b: {host: y}\n");
    let e = c.resolve("@pg").unwrap_err();
    assert!(
        e.message.contains("`@pg.a`") && e.message.contains("`@pg.b`"),
        "{}",
        e.message
    );
}

#[test]
fn yaml_error_does_not_quote_the_file() {
    let mut c = Connections::default();
    let e = c
        .merge_text(
            "f.yaml",
            "connections:\n  a: [hunter2-secret\n",
            Origin::ConnectionsFile,
        )
        .unwrap_err();
    assert!(!e.message.contains("hunter2"), "{}", e.message);
    assert!(e.message.contains("line"), "{}", e.message);
}

#[test]
fn redactor_masks_pointers_keys_and_values() {
    let r = Redactor::new(Strategy::Mask, "***");
    r.add_secrets(["topsecretvalue"]);
    let v = json!({"query": "select 'topsecretvalue'", "auth": {"api_key": "k-123"}, "primary_key": ["id"], "dsn_x": null, "custom": "c"});
    let out = r.json(&v, &["/custom".to_string()]);
    assert_eq!(
        out,
        json!({"query": "select '***'", "auth": {"api_key": "***"}, "primary_key": ["id"], "dsn_x": null, "custom": "***"})
    );
    assert_eq!(
        r.text("error: login failed for topsecretvalue"),
        "error: login failed for ***"
    );
    assert_eq!(
        r.text("mysql://root:pw@localhost/db"),
        "mysql://root:***@localhost/db"
    );
}

#[test]
fn secret_key_rules() {
    for k in [
        "password",
        "DB_PASSWORD",
        "service_role_key",
        "anon_key",
        "token",
        "dsn",
        "Authorization",
        "key",
    ] {
        assert!(is_secret_key(k), "{k}");
    }
    for k in ["host", "primary_key", "path", "keys", "keyspace"] {
        assert!(!is_secret_key(k), "{k}");
    }
}

// Issue 13 (the data boundary): secrets also leave in encoded forms.

#[test]
fn redactor_masks_percent_encoded_forms_of_every_secret() {
    let r = Redactor::new(Strategy::Mask, "***");
    r.add_secrets(["p@ss w/rd:ü"]);
    for (text, want) in [
        // encodeURIComponent-style, upper and lower case hex
        ("?key=p%40ss%20w%2Frd%3A%C3%BC&x=1", "?key=***&x=1"),
        ("?key=p%40ss%20w%2frd%3a%c3%bc", "?key=***"),
        // form encoding (space as `+`), and an encoder that leaves `@` and `:` alone
        ("password=p%40ss+w%2Frd%3A%C3%BC", "password=***"),
        ("u=p@ss%20w/rd:%C3%BC;", "u=***;"),
        // the plain value still
        ("login p@ss w/rd:ü refused", "login *** refused"),
    ] {
        assert_eq!(r.text(text), want, "{text}");
    }
    // Nothing that only looks close is touched, and text without the secret is returned as is.
    let other = "p%40ss%20w%2Frd and 100%25 done + more";
    assert_eq!(r.text(other), other);
}

#[test]
fn redactor_masks_base64_forms_and_http_basic_credentials() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let r = Redactor::new(Strategy::Mask, "***");
    let secret = "s3cr3t-?>-p4ssw0rd";
    let basic = super::basic_credentials("ann", secret);
    r.add_secrets([secret, basic.as_str()]);
    // The whole Basic header, when the user is known (a connection's `user` field).
    assert_eq!(
        r.text(&format!("Authorization: Basic {basic}")),
        "Authorization: Basic ***"
    );
    // With a user the redactor never heard of, at each of the three alignments: no run of the secret's own
    // base64 characters survives.
    for user in ["bob", "bo", "b", "carol12"] {
        let header = STANDARD.encode(format!("{user}:{secret}"));
        let masked = r.text(&format!("Basic {header}"));
        assert!(masked.contains("***"), "{user}: {masked}");
        let (before, after) = masked
            .trim_start_matches("Basic ")
            .split_once("***")
            .unwrap();
        assert!(
            before.len() <= (user.len() + 1) * 4 / 3 + 2 && after.len() <= 4,
            "{user}: only the user's part and the boundary characters remain: {masked}"
        );
    }
    // The value encoded alone, standard and URL-safe.
    assert_eq!(r.text(&STANDARD.encode(secret)), "***");
    assert_eq!(r.text(&URL_SAFE_NO_PAD.encode(secret)), "***");
}

#[test]
fn a_connection_adds_its_basic_credentials_to_the_secret_values() {
    let mut c = Connections::default();
    c.merge_text(
        "f.yaml",
        "connections:\n  graphql:\n    main:\n      auth_username: ann\n      auth_token: tok-123456\n",
        Origin::ConnectionsFile,
    )
    .unwrap();
    let r = c.resolve("@graphql.main").unwrap();
    assert!(r.secret_values.contains(&"tok-123456".to_string()), "{r:?}");
    assert!(
        r.secret_values
            .contains(&super::basic_credentials("ann", "tok-123456")),
        "{r:?}"
    );
}
