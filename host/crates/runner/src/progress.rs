//! Progress on a terminal: while a run goes on, one status line with each running step's rows and rows/s, and
//! a line per finished step, written to the writer the caller gives (the CLI passes stderr when it is a
//! terminal); nothing here writes to the run directory.

use super::StepStats;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One step as the display sees it.
pub struct Row {
    pub id: String,
    pub stats: Arc<StepStats>,
    /// Stats of the steps feeding it (a writer's progress is the rows it has pulled).
    pub upstream: Vec<Arc<StepStats>>,
}

impl Row {
    /// Rows through this step so far: its output rows, or for a step without output the rows it pulled.
    fn rows(&self) -> u64 {
        let own = self.stats.live_rows.load(Ordering::Relaxed);
        if own > 0 || self.upstream.is_empty() {
            own
        } else {
            self.upstream
                .iter()
                .map(|u| u.live_rows.load(Ordering::Relaxed))
                .sum()
        }
    }
}

pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

const TICK: Duration = Duration::from_millis(200);

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(rows: u64, ms: u64) -> String {
    if ms == 0 {
        return "-".to_string();
    }
    thousands((rows as f64 * 1000.0 / ms as f64) as u64)
}

impl Progress {
    pub fn start(rows: Vec<Row>, mut err: Box<dyn Write + Send>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut reported = vec![false; rows.len()];
            let mut live_shown = false;
            loop {
                let last = s.load(Ordering::Relaxed);
                if live_shown {
                    let _ = write!(err, "\r\x1b[2K");
                    live_shown = false;
                }
                for (i, r) in rows.iter().enumerate() {
                    let outcome = *r.stats.outcome.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(outcome) = outcome else { continue };
                    if reported[i] || outcome == "not_started" {
                        continue;
                    }
                    reported[i] = true;
                    let ms = r.stats.duration_ms.load(Ordering::Relaxed);
                    let n = r.rows();
                    let _ = writeln!(
                        err,
                        "  {:<24} {outcome:<10} {:>12} rows  {:>10} rows/s  {:.1} s",
                        r.id,
                        thousands(n),
                        rate(n, ms),
                        ms as f64 / 1000.0
                    );
                }
                if last {
                    let _ = err.flush();
                    return;
                }
                let running: Vec<String> = rows
                    .iter()
                    .filter(|r| {
                        r.stats
                            .started
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .is_some()
                            && !r.stats.finished.load(Ordering::Relaxed)
                    })
                    .map(|r| {
                        let n = r.rows();
                        format!(
                            "{} {} rows ({} rows/s)",
                            r.id,
                            thousands(n),
                            rate(n, r.stats.elapsed_ms())
                        )
                    })
                    .collect();
                if !running.is_empty() {
                    let _ = write!(err, "  running: {}", running.join(" | "));
                    live_shown = true;
                }
                let _ = err.flush();
                std::thread::sleep(TICK);
            }
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }

    /// Prints the last lines and clears the status line.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
