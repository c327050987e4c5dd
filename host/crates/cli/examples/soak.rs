//! Soak: the same small pipeline run many times back to back in ONE process, through the same code path as
//! `osiris run` (`osiris_cli::run_from`), sampling what must stay flat: peak and current RSS, open file
//! descriptors, threads, and the database sessions osiris holds. Not a test; `tests/bench/soak.sh` sets up the
//! databases and the project and runs it. Usage: `soak PROJECT_DIR PIPELINE.yaml RUNS PG_DB MY_DB`.

// An example links every dependency of its crate; it uses few of them.
#![allow(unused_crate_dependencies)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

fn sql(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, project, pipeline, runs, pg_db, my_db] = &args[..] else {
        panic!("usage: soak PROJECT_DIR PIPELINE.yaml RUNS PG_DB MY_DB");
    };
    let runs: usize = runs.parse().expect("RUNS is a number");
    std::env::set_current_dir(PathBuf::from(project)).expect("the project directory exists");
    let pg_sessions = || {
        sql(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtX",
                "-c",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{pg_db}' AND pid <> pg_backend_pid()"
                ),
            ],
        )
    };
    let my_sessions = || {
        sql(
            "mariadb",
            &[
                "-h",
                "127.0.0.1",
                "-uroot",
                "-N",
                "-e",
                &format!(
                    "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = '{my_db}' AND ID <> CONNECTION_ID()"
                ),
            ],
        )
    };
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "{:>6} {:>10} {:>10} {:>5} {:>8} {:>8} {:>9}",
        "runs", "rss_kib", "hwm_kib", "fds", "threads", "pg_sess", "my_sess"
    );
    let t0 = std::time::Instant::now();
    for i in 1..=runs {
        let exit = osiris_cli::run_from(
            ["osiris", "--quiet", "run", pipeline.as_str()]
                .iter()
                .map(Into::into)
                .collect(),
        );
        assert_eq!(exit.code(), 0, "run {i} failed");
        if i == 1 || i % (runs / 10).max(1) == 0 {
            let _ = writeln!(
                err,
                "{i:>6} {:>10} {:>10} {:>5} {:>8} {:>8} {:>9}",
                status_kib("VmRSS:"),
                status_kib("VmHWM:"),
                count_dir("/proc/self/fd"),
                count_dir("/proc/self/task"),
                pg_sessions(),
                my_sessions()
            );
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let _ = writeln!(
        err,
        "{runs} runs in {secs:.1} s ({:.1} ms per run)",
        secs * 1000.0 / runs as f64
    );
}
