//! The plugin ABI through real cdylibs (tests/plugins/*), and the same driver linked in ("twin" tests).

use crate::support::{build_test_plugin, repo_root, test_plugin_entry};
use osiris_plugin_sdk::arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema, TimeUnit};
use osiris_plugin_sdk::host::{LoadErrorKind, Module};
use osiris_plugin_sdk::testing::{self, TestContext};
use osiris_plugin_sdk::{ErrorKind, Level, PANIC_CODE, POISONED_CODE, PluginError, Streams};
use serde_json::json;
use std::sync::Arc;

/// The `test.echo` driver, compiled into this test binary.
#[allow(dead_code)]
#[path = "../plugins/echo/src/driver.rs"]
mod echo_driver;

/// The linked-in echo plugin, exported with the same macro as the cdylib.
mod linked_echo {
    use super::echo_driver as driver;

    osiris_plugin_sdk::export_ocp! {
        entry: osiris_ocp_test_echo_linked,
        name: "osiris-test-echo", version: "0.1.0",
        components: [
            osiris_plugin_sdk::Component { name: "test.echo", spec_yaml: driver::SPEC, driver: || Box::new(driver::Echo) },
        ],
    }
}

fn load(name: &str) -> Module {
    let path = build_test_plugin(name);
    testing::load_cdylib(&path, &test_plugin_entry(name))
        .unwrap_or_else(|e| panic!("loading {}: {e} ({:?})", path.display(), e.help))
}

fn linked() -> Module {
    Module::from_static(&linked_echo::OCP_ENTRY).expect("the linked-in echo loads")
}

/// Three rows in two batches, with nulls and several types.
fn people() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("active", DataType::Boolean, true),
        Field::new(
            "seen",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let batch = |ids: Vec<i64>,
                 names: Vec<Option<&str>>,
                 scores: Vec<Option<f64>>,
                 active: Vec<Option<bool>>,
                 seen: Vec<Option<i64>>| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Float64Array::from(scores)),
            Arc::new(BooleanArray::from(active)),
            Arc::new(TimestampMicrosecondArray::from(seen).with_timezone("UTC")),
        ];
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    };
    vec![
        batch(
            vec![1, 2],
            vec![Some("ada"), None],
            vec![Some(1.5), None],
            vec![Some(true), Some(false)],
            vec![Some(0), None],
        ),
        batch(
            vec![3],
            vec![Some("émile")],
            vec![Some(-2.25)],
            vec![None],
            vec![Some(1_700_000_000_000_000)],
        ),
    ]
}

fn int64s(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column `{column}`"));
            array
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

/// Runs `component` of `module` on [`people`] and checks the output: the input columns unchanged, plus `n`.
fn check_echo(module: &Module, component: &str) -> Vec<RecordBatch> {
    let ctx = TestContext::new();
    let input = people();
    let out = testing::run_collect(
        module,
        component,
        &json!({"column": "n"}),
        ctx.clone(),
        testing::single_input(input.clone()),
    )
    .unwrap_or_else(|e| panic!("{component}: {e}"));
    assert_eq!(out.keys().collect::<Vec<_>>(), vec!["df"]);
    let df = &out["df"];
    assert_eq!(df.len(), 2, "batches stay batches");
    let names: Vec<String> = df[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["id", "name", "score", "active", "seen", "n"]);
    assert_eq!(df[0].schema().field(5).data_type(), &DataType::Int64);
    for (got, want) in df.iter().zip(&input) {
        for i in 0..want.num_columns() {
            assert_eq!(
                got.column(i).to_data(),
                want.column(i).to_data(),
                "column {i} crosses unchanged"
            );
        }
    }
    assert_eq!(int64s(df, "n"), vec![0, 1, 2]);
    assert_eq!(int64s(df, "id"), vec![1, 2, 3]);
    let names = df[1]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(names.value(0), "émile");
    assert!(df[0].column(2).is_null(1));
    // Logged during run; the metric is sent from the stream after run returned (the context outlives run).
    assert_eq!(
        ctx.logs(),
        vec![(Level::Info, "echo: step `test` adds column `n`".to_string())]
    );
    assert_eq!(ctx.metric_total("rows_out"), 3.0);
    assert_eq!(
        Arc::strong_count(&ctx),
        1,
        "the plugin released every context reference"
    );
    df.clone()
}

#[test]
fn echo_loads_and_lists_its_component() {
    let module = load("echo");
    assert_eq!(module.plugin_name(), "osiris-test-echo");
    assert_eq!(module.plugin_version(), "0.1.0");
    assert_eq!(module.abi_version(), osiris_plugin_sdk::ABI_VERSION);
    assert_eq!(module.sdk_version(), osiris_plugin_sdk::SDK_VERSION);
    let names: Vec<&str> = module
        .components()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["test.echo"]);
    let spec = std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    assert_eq!(module.components()[0].spec_yaml, spec);
    testing::check_module(&module).unwrap();
    assert!(!module.is_poisoned());
}

#[test]
fn echo_transforms_a_stream() {
    check_echo(&load("echo"), "test.echo");
}

#[test]
fn returned_errors_cross_as_data() {
    let module = load("echo");
    let err = module
        .run(
            "test.echo",
            "s1",
            &json!({"fail": "bad row 7"}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .err()
        .expect("the call fails");
    assert_eq!(
        err,
        PluginError::new(ErrorKind::Data, "ECHO-FAIL", "bad row 7")
            .with_help("remove `fail` from the config")
    );
    assert!(!module.is_poisoned(), "a returned error does not poison");
    let err = module
        .run(
            "test.echo",
            "s1",
            &json!({}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.kind, ErrorKind::Config);
    assert_eq!(err.message, "step `s1` gives `test.echo` no input `df`");
    check_echo(&module, "test.echo");
}

#[test]
fn a_panic_in_run_is_an_error_and_poisons_the_plugin() {
    let module = load("echo");
    let err = module
        .run(
            "test.echo",
            "s1",
            &json!({"panic": true}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.kind, ErrorKind::Panic);
    assert_eq!(err.code, PANIC_CODE);
    assert!(
        err.message.starts_with(
            "plugin `osiris-test-echo 0.1.0` panicked while running step `s1` (`test.echo`): echo was asked to panic in step `s1` (at src/driver.rs:"
        ),
        "{err}"
    );
    assert!(
        err.help
            .as_deref()
            .unwrap()
            .contains("report it to its authors"),
        "{err:?}"
    );
    // The test process is still here; the plugin is not called again.
    assert!(module.is_poisoned());
    let again = module
        .run(
            "test.echo",
            "s2",
            &json!({}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .err()
        .expect("the call fails");
    assert_eq!(
        (again.kind, again.code.as_str()),
        (ErrorKind::Panic, POISONED_CODE)
    );
    assert_eq!(
        again.message,
        "plugin `osiris-test-echo 0.1.0` panicked earlier in this process and is not called again (poisoned)"
    );
    let doctor = module
        .doctor("test.echo", &json!({}), TestContext::new())
        .unwrap_err();
    assert_eq!(doctor.code, POISONED_CODE);
}

#[test]
fn a_panic_inside_get_next_is_caught() {
    let module = load("echo");
    let mut outputs = module
        .run(
            "test.echo",
            "s1",
            &json!({"panic_in_stream": true}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .expect("run itself succeeds; the panic comes when the output is pulled");
    assert!(!module.is_poisoned());
    let mut df = outputs.remove("df").unwrap();
    let err = PluginError::from_arrow(&df.next().expect("an error, not the end").unwrap_err());
    assert_eq!(err.kind, ErrorKind::Panic);
    assert!(
        err.message.starts_with(
            "plugin `osiris-test-echo 0.1.0` panicked while producing output `df` of step `s1` (`test.echo`): echo was asked to panic while its output is read"
        ),
        "{err}"
    );
    assert!(df.next().is_none(), "a stream that panicked ends");
    assert!(module.is_poisoned());
    let again = module
        .run(
            "test.echo",
            "s2",
            &json!({}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .err()
        .expect("the call fails");
    assert_eq!(again.code, POISONED_CODE);
}

#[test]
fn streams_of_a_poisoned_plugin_are_not_pulled() {
    let module = load("echo");
    let mut first = module
        .run(
            "test.echo",
            "s1",
            &json!({}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .unwrap();
    let panicked = module
        .run(
            "test.echo",
            "s2",
            &json!({"panic": true}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call panics");
    assert_eq!(panicked.code, PANIC_CODE, "{panicked}");
    assert!(module.is_poisoned());
    let err = PluginError::from_arrow(&first.remove("df").unwrap().next().unwrap().unwrap_err());
    assert_eq!(err.code, POISONED_CODE);
}

#[test]
fn discover_and_doctor_cross_as_json() {
    let module = load("echo");
    let ctx = TestContext::with_connection(json!({"base_dir": "/data"}));
    let found = module
        .discover("test.echo", &json!({"column": "x"}), ctx)
        .unwrap();
    assert_eq!(
        found,
        json!({"component": "test.echo", "config": {"column": "x"}, "connection": {"base_dir": "/data"}})
    );
    assert_eq!(
        module
            .doctor("test.echo", &json!({}), TestContext::new())
            .unwrap(),
        json!({"ok": true})
    );
    let cancelled = TestContext::new();
    cancelled.cancel();
    let err = module
        .doctor("test.echo", &json!({}), cancelled)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
}

#[test]
fn unknown_component_is_refused_without_calling_the_plugin() {
    let err = load("echo")
        .run(
            "test.ehco",
            "s1",
            &json!({}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.kind, ErrorKind::Config);
    assert_eq!(
        err.message,
        "plugin `osiris-test-echo 0.1.0` has no component `test.ehco`"
    );
    assert_eq!(err.help.as_deref(), Some("it offers: `test.echo`"));
}

#[test]
fn an_arrow55_plugin_exchanges_data_with_the_arrow58_host() {
    let lock =
        std::fs::read_to_string(repo_root().join("tests/plugins/arrow55/Cargo.lock")).unwrap();
    let arrow_versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.contains("name = \"arrow-array\""))
        .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .collect();
    assert_eq!(
        arrow_versions,
        vec!["\"55.2.0\""],
        "the plugin (and the SDK inside it) use arrow 55 only"
    );
    let module = load("arrow55");
    assert_eq!(module.plugin_name(), "osiris-test-arrow55");
    assert_eq!(module.components()[0].name, "test.echo55");
    check_echo(&module, "test.echo55");
}

#[test]
fn two_plugins_side_by_side() {
    let echo = load("echo");
    let old = load("arrow55");
    let a = check_echo(&echo, "test.echo");
    let b = check_echo(&old, "test.echo55");
    assert_eq!(a, b);
    // One panicking plugin does not poison the other.
    let panicked = old
        .run(
            "test.echo55",
            "s1",
            &json!({"panic": true}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call panics");
    assert_eq!(panicked.code, PANIC_CODE, "{panicked}");
    assert!(old.is_poisoned());
    assert!(!echo.is_poisoned());
    check_echo(&echo, "test.echo");
    // And the output of one plugin feeds the other (arrow 58 -> host -> arrow 55).
    let first = echo
        .run(
            "test.echo",
            "a",
            &json!({"column": "first"}),
            TestContext::new(),
            testing::single_input(people()),
        )
        .unwrap();
    let fresh = load("arrow55");
    assert!(
        !fresh.is_poisoned(),
        "poisoning belongs to a loaded module value"
    );
    let second = testing::run_collect(
        &fresh,
        "test.echo55",
        &json!({"column": "second"}),
        TestContext::new(),
        first,
    )
    .unwrap();
    assert_eq!(int64s(&second["df"], "first"), vec![0, 1, 2]);
    assert_eq!(int64s(&second["df"], "second"), vec![0, 1, 2]);
}

#[test]
fn twin_linked_and_loaded_modules_behave_the_same() {
    let loaded = load("echo");
    let linked = linked();
    assert_eq!(linked.plugin_name(), loaded.plugin_name());
    assert_eq!(linked.plugin_version(), loaded.plugin_version());
    assert_eq!(linked.abi_version(), loaded.abi_version());
    assert_eq!(linked.components(), loaded.components());
    assert_eq!(linked.origin(), "linked-in plugin");

    assert_eq!(
        check_echo(&linked, "test.echo"),
        check_echo(&loaded, "test.echo")
    );

    let fail = json!({"fail": "nope"});
    let err = |m: &Module, config: &serde_json::Value| {
        m.run(
            "test.echo",
            "s1",
            config,
            TestContext::new(),
            testing::single_input(people()),
        )
        .err()
        .expect("the call fails")
    };
    assert_eq!(err(&linked, &fail), err(&loaded, &fail));

    let ctx = || TestContext::with_connection(json!({"k": 1}));
    assert_eq!(
        linked.discover("test.echo", &json!({}), ctx()).unwrap(),
        loaded.discover("test.echo", &json!({}), ctx()).unwrap()
    );

    // Panics: same kind, code and message up to the source location (paths differ between the two builds).
    let before_location = |e: PluginError| {
        (
            e.kind,
            e.code,
            e.message.split(" (at ").next().unwrap().to_string(),
            e.help,
        )
    };
    let panic = json!({"panic": true});
    assert_eq!(
        before_location(err(&linked, &panic)),
        before_location(err(&loaded, &panic))
    );
    assert!(linked.is_poisoned() && loaded.is_poisoned());
    assert_eq!(err(&linked, &fail).code, POISONED_CODE);
    assert_eq!(err(&loaded, &fail).code, POISONED_CODE);
}

#[test]
fn load_errors_are_clear() {
    let path = build_test_plugin("echo");
    let err = testing::load_cdylib(&path, "osiris_ocp_nope").unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Symbol);
    assert!(
        err.message
            .contains("does not export the entry `osiris_ocp_nope`"),
        "{err}"
    );
    let err = testing::load_cdylib(&path, "not a symbol").unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Symbol);
    let not_a_library = repo_root().join("tests/plugins/echo/spec.yaml");
    let err = testing::load_cdylib(&not_a_library, "osiris_ocp_test_echo").unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Open);
    assert!(
        err.message.starts_with("cannot load plugin library `"),
        "{err}"
    );
}

#[test]
fn an_incompatible_module_layout_is_refused_in_one_sentence() {
    let path = build_test_plugin("badabi");
    let err = testing::load_cdylib(&path, "osiris_ocp_test_badabi").unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Layout);
    assert_eq!(
        err.message,
        format!(
            "plugin `{}` was built against an incompatible osiris-plugin-sdk ABI (type layout of `OcpModule` differs): rebuild it against osiris-plugin-sdk 0.1",
            path.display()
        )
    );
    assert!(!err.message.contains('\n'));
    assert!(
        err.detail.as_deref().is_some_and(|d| d.lines().count() > 3),
        "abi_stable's report is kept: {err:?}"
    );
}

#[test]
fn an_unsupported_abi_major_is_refused() {
    let path = build_test_plugin("badabi");
    let err = testing::load_cdylib(&path, "osiris_ocp_test_abi2").unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::AbiVersion);
    assert_eq!(
        err.message,
        format!(
            "plugin `{}` uses plugin ABI 2 but this osiris supports ABI 1",
            path.display()
        )
    );
    assert!(
        err.help
            .as_deref()
            .unwrap()
            .starts_with("rebuild the plugin against osiris-plugin-sdk 0.1"),
        "{err:?}"
    );
}

/// The test plugins' library constructor writes `<package>.loaded` into `$OSIRIS_TEST_MARKER_DIR` on dlopen,
/// before any function of the plugin is called (the plugin host's trust tests rely on it). Runs the load in a
/// child process (this test binary, one ignored test) so the variable never leaks into other tests.
#[test]
fn test_plugins_mark_the_moment_they_are_loaded() {
    let path = build_test_plugin("echo");
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sdk::load_echo_in_a_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OSIRIS_TEST_MARKER_DIR", dir.path())
        .env("OSIRIS_TEST_PLUGIN_PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the load: {stdout}"
    );
    let marker = std::fs::read_to_string(dir.path().join("osiris-test-echo.loaded")).unwrap();
    assert_eq!(marker.lines().count(), 1, "one load, one line: {marker:?}");
    let pid: u32 = marker.trim().parse().unwrap();
    assert_ne!(pid, std::process::id(), "written by the child process");
}

#[test]
#[ignore = "run in a child process by test_plugins_mark_the_moment_they_are_loaded"]
fn load_echo_in_a_child_process() {
    let dir = std::path::PathBuf::from(std::env::var_os("OSIRIS_TEST_MARKER_DIR").unwrap());
    let path = std::path::PathBuf::from(std::env::var_os("OSIRIS_TEST_PLUGIN_PATH").unwrap());
    let marker = dir.join("osiris-test-echo.loaded");
    assert!(!marker.exists(), "nothing loaded the plugin yet");
    let module = testing::load_cdylib(&path, "osiris_ocp_test_echo").unwrap();
    assert!(marker.exists(), "the constructor ran at load");
    assert_eq!(module.plugin_name(), "osiris-test-echo");
}

/// A first-party plugin: the `osiris_ocp_csv` entry linked into this binary and the same crate's cdylib behave
/// the same (the host links it; a distribution could ship it loaded).
#[test]
fn twin_first_party_csv_plugin_linked_and_loaded() {
    let linked = Module::from_static(&osiris_plugin_csv::OCP_ENTRY).unwrap();
    let loaded = testing::load_cdylib(
        &testing::built_cdylib("osiris_plugin_csv"),
        "osiris_ocp_csv",
    )
    .unwrap();
    assert_eq!(linked.plugin_name(), "osiris-csv");
    assert_eq!(loaded.plugin_name(), linked.plugin_name());
    assert_eq!(loaded.plugin_version(), linked.plugin_version());
    assert_eq!(loaded.components(), linked.components());
    testing::check_module(&loaded).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    std::fs::write(&file, "id,name\n1,ada\n2,\"b, c\"\n3,\n").unwrap();
    let config = json!({"path": file});
    let read = |m: &Module| {
        testing::run_collect(
            m,
            "filesystem.csv_extractor",
            &config,
            TestContext::new(),
            Streams::new(),
        )
        .unwrap()
        .remove("df")
        .unwrap()
    };
    let (a, b) = (read(&linked), read(&loaded));
    assert_eq!(a, b);
    assert_eq!(int64s(&a, "id"), vec![1, 2, 3]);
    let missing = json!({"path": dir.path().join("nope.csv")});
    let fail = |m: &Module| {
        let outputs = m.run(
            "filesystem.csv_extractor",
            "s1",
            &missing,
            TestContext::new(),
            Streams::new(),
        );
        match outputs {
            Err(e) => e,
            Ok(streams) => testing::collect(streams.into_values().next().unwrap()).unwrap_err(),
        }
    };
    let (ea, eb) = (fail(&linked), fail(&loaded));
    assert_eq!(ea, eb);
    assert_eq!(ea.kind, ErrorKind::Io, "{ea}");
}
