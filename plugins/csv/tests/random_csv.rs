//! Malformed CSV never panics `filesystem.csv_extractor` (issue 20, "bad input"): random bytes, invalid
//! UTF-8, stray quotes, ragged rows and very long fields either read or fail with an error, under every
//! combination of the options that change how bytes are split.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_csv::CsvExtractor;
use osiris_plugin_sdk::testing::TestContext;
use osiris_plugin_sdk::{Context, Driver, Streams};
use proptest::prelude::*;
use serde_json::json;

/// Pieces that look like CSV often enough to reach the parser's deeper paths.
const PIECES: &[&[u8]] = &[
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b"\"",
    b"\"\"",
    b"a",
    b"1",
    b"-2.5",
    b"NULL",
    b"",
    b"2026-01-01",
    b"true",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3",
    b"\x00",
    b"id,name\n",
];

fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

fn read_all(path: &std::path::Path, options: serde_json::Value) -> Result<u64, String> {
    let mut config = json!({ "path": path.display().to_string() });
    if let (Some(c), Some(o)) = (config.as_object_mut(), options.as_object()) {
        c.extend(o.clone());
    }
    let ctx = Context::new(TestContext::new());
    let outputs = CsvExtractor
        .run("random", &config, Streams::new(), &ctx)
        .map_err(|e| e.message)?;
    let mut rows = 0;
    for (_, stream) in outputs {
        for batch in stream {
            rows += batch.map_err(|e| e.to_string())?.num_rows() as u64;
        }
    }
    Ok(rows)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_extractor(
        bytes in csv_bytes(),
        header in any::<bool>(),
        delimiter in prop::sample::select(&[",", ";", "\t", "|"][..]),
        ignore_errors in any::<bool>(),
        quoted_nulls in any::<bool>(),
        batch_size in 1u64..50,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.csv");
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_all(&path, json!({
            "header": header, "delimiter": delimiter, "ignore_errors": ignore_errors,
            "allow_quoted_nulls": quoted_nulls, "batch_size": batch_size,
        }));
    }
}

#[test]
fn huge_fields_and_gzip_garbage_end_in_a_result_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // One 8 MiB field, quoted and unquoted, and an unterminated quote running to the end of the file.
    let big = "x".repeat(8 << 20);
    for (name, text) in [
        ("quoted.csv", format!("id,note\n1,\"{big}\"\n")),
        ("plain.csv", format!("id,note\n1,{big}\n2,b\n")),
        ("open_quote.csv", format!("id,note\n1,\"{big}\n2,b\n")),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let r = read_all(&p, json!({}));
        // An unterminated quote runs to the end of the file (one long last field), as Python's csv reads it;
        // only the complete files must read.
        if name != "open_quote.csv" {
            assert!(r.is_ok(), "{name}: {r:?}");
        }
    }
    // Bytes that claim to be gzip and are not.
    let p = dir.path().join("broken.csv.gz");
    std::fs::write(&p, b"\x1f\x8b\x08\x00garbage that is not deflate").unwrap();
    assert!(read_all(&p, json!({})).is_err());
}
