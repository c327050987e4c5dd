//! `osiris runs report`: one self-contained HTML page about one run, made from its run directory alone
//! (`status.json`, `events.jsonl`, `manifest.yaml`). Inline CSS, SVG and a few lines of script; nothing is
//! fetched. Every value read passes the [`Redactor`] the caller gives before it is escaped into the page.
//!
//! What the page shows: the run's state and outcome, the pipeline DAG with each step's status, a timeline of
//! the steps, rows read and written and rows/s per step, retries, the error with its code and help, the
//! manifest with its fingerprints, and the environment (osiris version, plugins and their signatures).

use crate::history::{Shown, view_of};
use osiris_core::secrets::Redactor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A step as the page draws it.
struct Node {
    id: String,
    component: String,
    status: String,
    /// Steps it reads from or waits for.
    deps: Vec<String>,
    layer: usize,
    row: usize,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn ms_of(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_micros() / 1000)
}

fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 => crate::progress::thousands(n as u64),
        Some(n) => format!("{n:.1}"),
        None => "-".to_string(),
    }
}

fn fmt_ms(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.2} s", ms as f64 / 1000.0),
        None => "-".to_string(),
    }
}

/// The CSS class of a step or run status.
fn class_of(status: &str) -> &'static str {
    match status {
        "succeeded" => "ok",
        "failed" | "crashed" => "failed",
        "cancelled" => "cancelled",
        "incomplete" | "running" => "running",
        _ => "pending",
    }
}

/// The steps in manifest order with their dependencies and a layered layout (a step sits one layer right of
/// its furthest dependency).
fn nodes(manifest: Option<&Value>, status: &Value) -> Vec<Node> {
    let step_status: BTreeMap<&str, &str> = status["steps"]
        .as_array()
        .map(|a| a.iter().map(|st| (s(st, "id"), s(st, "status"))).collect())
        .unwrap_or_default();
    let mut out: Vec<Node> = Vec::new();
    let listed: Vec<Value> = match manifest.and_then(|m| m["steps"].as_array()) {
        Some(a) => a.clone(),
        None => status["steps"].as_array().cloned().unwrap_or_default(),
    };
    for st in &listed {
        let id = s(st, "id").to_string();
        let mut deps: Vec<String> = Vec::new();
        let from_inputs = st["inputs"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_str).map(str::to_string))
            .into_iter()
            .flatten();
        let from_needs = st["needs"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string))
            .into_iter()
            .flatten();
        for d in from_inputs.chain(from_needs) {
            if !deps.contains(&d) && d != id {
                deps.push(d);
            }
        }
        let layer = deps
            .iter()
            .filter_map(|d| out.iter().find(|n| &n.id == d).map(|n| n.layer + 1))
            .max()
            .unwrap_or(0);
        let row = out.iter().filter(|n| n.layer == layer).count();
        out.push(Node {
            status: step_status
                .get(id.as_str())
                .copied()
                .unwrap_or("not_started")
                .to_string(),
            component: s(st, "component").to_string(),
            id,
            deps,
            layer,
            row,
        });
    }
    out
}

const NODE_W: usize = 200;
const NODE_H: usize = 54;
const GAP_X: usize = 70;
const GAP_Y: usize = 26;

fn dag_svg(nodes: &[Node]) -> String {
    let layers = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(1);
    let rows = nodes.iter().map(|n| n.row + 1).max().unwrap_or(1);
    let w = layers * (NODE_W + GAP_X) + GAP_X;
    let h = rows * (NODE_H + GAP_Y) + GAP_Y;
    let pos = |n: &Node| {
        (
            GAP_X / 2 + n.layer * (NODE_W + GAP_X),
            GAP_Y + n.row * (NODE_H + GAP_Y),
        )
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="pipeline DAG"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#667"/></marker></defs>"##
    );
    for n in nodes {
        let (x2, y2) = pos(n);
        for d in &n.deps {
            if let Some(up) = nodes.iter().find(|u| &u.id == d) {
                let (x1, y1) = pos(up);
                let (sx, sy) = (x1 + NODE_W, y1 + NODE_H / 2);
                let (ex, ey) = (x2, y2 + NODE_H / 2);
                let mx = (sx + ex) / 2;
                let _ = write!(
                    o,
                    r##"<path class="edge" data-from="{}" data-to="{}" d="M {sx} {sy} C {mx} {sy}, {mx} {ey}, {ex} {ey}" fill="none" stroke="#667" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
                    esc(&up.id),
                    esc(&n.id)
                );
            }
        }
    }
    for n in nodes {
        let (x, y) = pos(n);
        let id = esc(&n.id);
        let _ = write!(
            o,
            r#"<g class="node {cls}" data-step="{id}" data-status="{st}" tabindex="0"><title>{id}: {st}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8"/><text x="{tx}" y="{ty1}" class="nid">{idt}</text><text x="{tx}" y="{ty2}" class="ncomp">{comp} · {st}</text></g>"#,
            cls = class_of(&n.status),
            st = esc(&n.status),
            tx = x + 10,
            ty1 = y + 22,
            ty2 = y + 41,
            idt = esc(&clip(&n.id, 24)),
            comp = esc(&clip(&n.component, 22)),
        );
    }
    o.push_str("</svg>");
    o
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Each step's start and end (ms since the epoch) from its events, or its recorded duration.
fn spans(nodes: &[Node], events: &[Value], status: &Value) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let of_step = |names: &[&str]| {
            events
                .iter()
                .filter(|e| s(e, "step") == n.id && names.contains(&s(e, "event")))
                .filter_map(|e| ms_of(s(e, "ts")))
                .collect::<Vec<_>>()
        };
        let Some(&start) = of_step(&["step_start"]).first() else {
            continue;
        };
        let duration = status["steps"]
            .as_array()
            .and_then(|a| a.iter().find(|st| s(st, "id") == n.id))
            .and_then(|st| st["duration_ms"].as_i64());
        let end = of_step(&["step_complete", "step_error", "step_cancelled"])
            .last()
            .copied()
            .or(duration.map(|d| start + d))
            .unwrap_or(start);
        out.insert(n.id.clone(), (start, end.max(start)));
    }
    out
}

fn gantt_svg(nodes: &[Node], spans: &BTreeMap<String, (i64, i64)>, events: &[Value]) -> String {
    if spans.is_empty() {
        return r#"<p class="muted" id="gantt-empty">no step started</p>"#.to_string();
    }
    let t0 = spans.values().map(|x| x.0).min().unwrap_or(0);
    let t1 = spans.values().map(|x| x.1).max().unwrap_or(t0).max(t0 + 1);
    let total = (t1 - t0) as f64;
    let (label_w, bar_w, row_h) = (180.0, 720.0, 28.0);
    let h = nodes.len() as f64 * row_h + 40.0;
    let w = label_w + bar_w + 90.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="timeline">"#
    );
    for i in 0..=4 {
        let x = label_w + bar_w * i as f64 / 4.0;
        let _ = write!(
            o,
            r##"<line x1="{x}" y1="0" x2="{x}" y2="{y2}" stroke="#dde"/><text x="{x}" y="{ty}" class="tick">{t}</text>"##,
            y2 = h - 22.0,
            ty = h - 8.0,
            t = esc(&fmt_ms(&Value::from((total * i as f64 / 4.0) as u64)))
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let y = i as f64 * row_h + 6.0;
        let _ = write!(
            o,
            r#"<text x="4" y="{}" class="glabel">{}</text>"#,
            y + 15.0,
            esc(&clip(&n.id, 22))
        );
        if let Some(&(a, b)) = spans.get(&n.id) {
            let x = label_w + bar_w * (a - t0) as f64 / total;
            let bw = (bar_w * (b - a) as f64 / total).max(2.0);
            let _ = write!(
                o,
                r#"<rect class="bar {}" data-step="{}" x="{x:.1}" y="{y}" width="{bw:.1}" height="{}" rx="3"><title>{}: {}</title></rect><text x="{:.1}" y="{}" class="tick">{}</text>"#,
                class_of(&n.status),
                esc(&n.id),
                row_h - 10.0,
                esc(&n.id),
                esc(&fmt_ms(&Value::from(b - a))),
                x + bw + 4.0,
                y + 13.0,
                esc(&fmt_ms(&Value::from(b - a)))
            );
        }
        for e in events
            .iter()
            .filter(|e| s(e, "event") == "step_retry" && s(e, "step") == n.id)
        {
            if let Some(t) = ms_of(s(e, "ts")) {
                let x = label_w + bar_w * (t - t0) as f64 / total;
                let _ = write!(
                    o,
                    r##"<line class="retry" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#b60" stroke-width="2"><title>retry</title></line>"##,
                    y - 2.0,
                    y + row_h - 6.0
                );
            }
        }
    }
    o.push_str("</svg>");
    o
}

/// The code (`RUN-E004`), the inner driver code (`CSV-OPEN`), the message and the help lines of an error text.
fn error_parts(text: &str) -> (Option<String>, Option<String>, String, Vec<String>) {
    let code = text
        .find("error[")
        .and_then(|i| text[i + 6..].split(']').next().map(str::to_string));
    let inner = text.match_indices('[').find_map(|(i, _)| {
        let rest = &text[i + 1..];
        let c = rest.split(']').next()?;
        let before = text[..i].ends_with("error");
        (!before
            && !c.is_empty()
            && c.len() <= 40
            && c.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-' || ch == '_'))
        .then(|| c.to_string())
    });
    let mut message = Vec::new();
    let mut help = Vec::new();
    for l in text.lines() {
        let t = l.trim_start();
        if let Some(h) = t.strip_prefix("= help:") {
            help.push(h.trim().to_string());
        } else {
            message.push(l.to_string());
        }
    }
    (code, inner, message.join("\n"), help)
}

const CSS: &str = r#"
:root{--ok:#1f8a4c;--failed:#c0392b;--cancelled:#b7791f;--running:#2b6cb0;--pending:#8a8fa3}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{padding:18px 28px;background:#1d2330;color:#fff}header h1{margin:0 0 4px;font-size:20px}
header .meta{opacity:.8;font-size:13px}main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #e2e5ee;border-radius:8px;padding:14px 18px;margin:16px 0;overflow-x:auto}
h2{font-size:16px;margin:0 0 10px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eceef4;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f3f4f8;padding:10px;border-radius:6px;overflow-x:auto;white-space:pre-wrap}
.badge{display:inline-block;padding:2px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.badge.ok{background:var(--ok)}.badge.failed{background:var(--failed)}.badge.cancelled{background:var(--cancelled)}.badge.running{background:var(--running)}.badge.pending{background:var(--pending)}
.states span{margin-right:6px}.states .off{opacity:.35}
.node rect{fill:#fff;stroke-width:2}.node.ok rect{stroke:var(--ok);fill:#eaf7ef}.node.failed rect{stroke:var(--failed);fill:#fdecea}
.node.cancelled rect{stroke:var(--cancelled);fill:#fdf4e3}.node.running rect{stroke:var(--running);fill:#e8f0fb}.node.pending rect{stroke:var(--pending);fill:#f1f2f6;stroke-dasharray:4 3}
.node{cursor:pointer}.node.sel rect{stroke-width:4}.nid{font-weight:600;font-size:13px}.ncomp{font-size:11px;fill:#555}
.bar.ok{fill:var(--ok)}.bar.failed{fill:var(--failed)}.bar.cancelled{fill:var(--cancelled)}.bar.running{fill:var(--running)}.bar.pending{fill:var(--pending)}
.glabel{font-size:12px}.tick{font-size:10px;fill:#667}.muted{color:#778}tr.sel{background:#fff7d6}
.err{border-left:4px solid var(--failed)}.code{font-family:ui-monospace,monospace;font-weight:700}
"#;

const JS: &str = r#"
(function(){
  function pick(id){
    document.querySelectorAll('.sel').forEach(function(e){e.classList.remove('sel');});
    document.querySelectorAll('[data-step]').forEach(function(e){
      if(e.getAttribute('data-step')===id){e.classList.add('sel');}
    });
  }
  document.querySelectorAll('#dag .node').forEach(function(n){
    n.addEventListener('click',function(){pick(n.getAttribute('data-step'));});
  });
  document.body.setAttribute('data-steps-drawn', String(document.querySelectorAll('#dag .node').length));
  document.body.setAttribute('data-ready','1');
})();
"#;

/// The report page of the run `shown`. `manifest_text` is the run directory's `manifest.yaml` (when it has
/// one); `events` come from [`crate::history::read_events`]. Every value passes `redactor`.
pub fn html(
    shown: &Shown,
    events: &[Value],
    manifest_text: Option<&str>,
    redactor: &Redactor,
) -> String {
    let status = redactor.json(&shown.status, &[]);
    let events: Vec<Value> = events.iter().map(|e| redactor.json(e, &[])).collect();
    let manifest_text = manifest_text.map(|t| redactor.text(t));
    let manifest: Option<Value> = manifest_text
        .as_deref()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(t).ok())
        .and_then(|y| serde_json::to_value(y).ok());
    let view = redactor.json(&view_of(shown, &events), &[]);
    let r = |t: &str| esc(&redactor.text(t));

    let nodes = nodes(manifest.as_ref(), &status);
    let spans = spans(&nodes, &events, &status);
    let run_status = s(&status, "status");
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>osiris run {id} ({st})</title><style>{CSS}</style></head><body data-run=\"{id}\" data-status=\"{st}\">",
        id = r(s(&status, "run_id")),
        st = r(run_status),
    );
    let _ = write!(
        o,
        "<header><h1>{pipe} <span class=\"badge {cls}\" id=\"run-status\">{st}</span></h1><div class=\"meta\">run <b>{id}</b> · profile {prof} · started {start} · ended {end} · duration {dur} · exit {exit}</div></header><main>",
        pipe = r(s(&status, "pipeline")),
        cls = class_of(run_status),
        st = r(run_status),
        id = r(s(&status, "run_id")),
        prof = r(s(&status, "profile")),
        start = r(s(&status, "started_at")),
        end = r(s(&status, "ended_at")),
        dur = esc(&fmt_ms(&status["duration_ms"])),
        exit = esc(&status["exit_code"].to_string()),
    );

    // State machine.
    o.push_str("<section id=\"states\"><h2>State</h2><div class=\"states\">");
    let reached: Vec<&str> = view["states"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["state"].as_str()).collect())
        .unwrap_or_default();
    for st in ["NEW", "COMPILED", "RUNNING"] {
        let _ = write!(
            o,
            "<span class=\"badge {}\">{st}</span>→ ",
            if reached.contains(&st) {
                "ok"
            } else {
                "pending off"
            }
        );
    }
    let last = s(&view, "state");
    let _ = write!(
        o,
        "<span class=\"badge {}\" id=\"final-state\">{}</span></div>",
        class_of(&last.to_ascii_lowercase()),
        esc(last)
    );
    o.push_str("<table><tr><th>state</th><th>at</th></tr>");
    if let Some(a) = view["states"].as_array() {
        for x in a {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td></tr>",
                r(s(x, "state")),
                r(x["at"].as_str().unwrap_or("-"))
            );
        }
    }
    o.push_str("</table></section>");

    // Error.
    if let Some(e) = status.get("error").and_then(Value::as_str) {
        let (code, inner, message, help) = error_parts(e);
        let _ = write!(
            o,
            "<section id=\"error\" class=\"err\"><h2>Error</h2><p>code <span class=\"code\" id=\"error-code\">{}</span>{}{}</p><pre id=\"error-message\">{}</pre>",
            esc(code.as_deref().unwrap_or("-")),
            inner
                .map(|c| format!(
                    " · driver code <span class=\"code\" id=\"driver-code\">{}</span>",
                    esc(&c)
                ))
                .unwrap_or_default(),
            status
                .get("failed_step")
                .and_then(Value::as_str)
                .map(|st| format!(" · step <b>{}</b>", r(st)))
                .unwrap_or_default(),
            esc(&message)
        );
        for h in help {
            let _ = write!(o, "<p class=\"help\"><b>help:</b> {}</p>", esc(&h));
        }
        o.push_str(
            "<p class=\"muted\">every code is explained in docs/errors.md of the osiris documentation</p></section>",
        );
    }

    // DAG.
    let _ = write!(
        o,
        "<section id=\"dag-section\"><h2>Pipeline ({} steps)</h2>{}</section>",
        nodes.len(),
        dag_svg(&nodes)
    );

    // Timeline.
    let _ = write!(
        o,
        "<section id=\"timeline\"><h2>Timeline</h2>{}</section>",
        gantt_svg(&nodes, &spans, &events)
    );

    // Steps table.
    o.push_str("<section id=\"steps\"><h2>Steps</h2><table><tr><th>step</th><th>component</th><th>plugin</th><th>status</th><th class=\"n\">attempts</th><th class=\"n\">rows read</th><th class=\"n\">rows written</th><th class=\"n\">duration</th><th class=\"n\">rows/s</th></tr>");
    if let Some(steps) = status["steps"].as_array() {
        for st in steps {
            let rows = st["rows_read"]
                .as_f64()
                .unwrap_or(0.0)
                .max(st["rows_written"].as_f64().unwrap_or(0.0));
            let rate = match st["duration_ms"].as_f64() {
                Some(d) if d > 0.0 && rows > 0.0 => {
                    crate::progress::thousands((rows * 1000.0 / d) as u64)
                }
                _ => "-".to_string(),
            };
            let _ = write!(
                o,
                "<tr data-step=\"{id}\"><td>{id}</td><td>{}</td><td>{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{rate}</td></tr>",
                r(s(st, "component")),
                r(s(st, "plugin")),
                class_of(s(st, "status")),
                r(s(st, "status")),
                esc(&st["attempts"].to_string()),
                esc(&fmt_num(&st["rows_read"])),
                esc(&fmt_num(&st["rows_written"])),
                esc(&fmt_ms(&st["duration_ms"])),
                id = r(s(st, "id")),
            );
        }
    }
    let _ = write!(
        o,
        "<tr><th>total</th><td></td><td></td><td></td><td></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td></td></tr></table></section>",
        esc(&fmt_num(&status["rows_read"])),
        esc(&fmt_num(&status["rows_written"])),
        esc(&fmt_ms(&status["duration_ms"]))
    );

    // Retries.
    let retries: Vec<&Value> = events
        .iter()
        .filter(|e| s(e, "event") == "step_retry")
        .collect();
    let _ = write!(
        o,
        "<section id=\"retries\"><h2>Retries ({})</h2>",
        retries.len()
    );
    if retries.is_empty() {
        o.push_str("<p class=\"muted\">no step was retried</p>");
    } else {
        o.push_str("<table><tr><th>at</th><th>step</th><th class=\"n\">attempt</th><th class=\"n\">delay</th><th>error of the attempt before</th></tr>");
        for e in retries {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}/{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                r(s(e, "ts")),
                r(s(e, "step")),
                esc(&e["attempt"].to_string()),
                esc(&e["max_attempts"].to_string()),
                esc(&fmt_ms(&e["delay_ms"])),
                r(s(e, "error"))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");

    // Manifest and fingerprints.
    o.push_str("<section id=\"manifest\"><h2>Manifest</h2><table>");
    let _ = write!(
        o,
        "<tr><th>manifest_hash</th><td><code>{}</code></td></tr>",
        r(s(&status, "manifest_hash"))
    );
    if let Some(fps) = manifest
        .as_ref()
        .and_then(|m| m["pipeline"]["fingerprints"].as_object())
    {
        for (k, v) in fps {
            let _ = write!(
                o,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(k),
                r(v.as_str().unwrap_or_default())
            );
        }
    }
    o.push_str("</table>");
    match &manifest_text {
        Some(t) => {
            let _ = write!(
                o,
                "<details><summary>manifest.yaml</summary><pre id=\"manifest-text\">{}</pre></details>",
                esc(t)
            );
        }
        None => o.push_str("<p class=\"muted\">the run directory holds no manifest.yaml</p>"),
    }
    o.push_str("</section>");

    // Environment.
    let env = &status["environment"];
    let _ = write!(
        o,
        "<section id=\"environment\"><h2>Environment</h2><table><tr><th>osiris</th><td id=\"osiris-version\">{}</td></tr><tr><th>platform</th><td>{} {}</td></tr></table>",
        r(env["osiris_version"]
            .as_str()
            .unwrap_or("not recorded by this run")),
        r(s(env, "os")),
        r(s(env, "arch"))
    );
    o.push_str("<table><tr><th>plugin</th><th>signature</th><th>components</th></tr>");
    if let Some(ps) = env["plugins"].as_array() {
        for p in ps {
            let comps: Vec<String> = p["components"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(&r).collect())
                .unwrap_or_default();
            let _ = write!(
                o,
                "<tr class=\"plugin\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                r(s(p, "plugin")),
                r(s(p, "signature")),
                comps.join(", ")
            );
        }
    }
    o.push_str("</table></section>");

    // Files.
    let _ = write!(
        o,
        "<section id=\"files\"><h2>Files</h2><p>run directory <code>{}</code>{}</p><ul>",
        r(&shown.run_dir),
        if shown.dir_exists {
            ""
        } else {
            " (no longer exists)"
        }
    );
    for f in shown.files.iter().chain(shown.artifacts.iter()) {
        let _ = write!(o, "<li><code>{}</code></li>", r(f));
    }
    let _ = writeln!(
        o,
        "</ul></section></main><script>{JS}</script></body></html>"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_parts_split_code_driver_code_and_help() {
        let (code, inner, msg, help) = error_parts(
            "error[RUN-E004]: step `x` failed: [CSV-OPEN] cannot open\n  = help: check the path",
        );
        assert_eq!(code.as_deref(), Some("RUN-E004"));
        assert_eq!(inner.as_deref(), Some("CSV-OPEN"));
        assert!(msg.contains("cannot open"));
        assert_eq!(help, ["check the path"]);
    }

    #[test]
    fn a_step_sits_right_of_its_furthest_dependency() {
        let m = serde_json::json!({"steps": [
            {"id": "a"}, {"id": "b", "needs": ["a"]}, {"id": "c", "inputs": {"x": "a", "y": "b"}}, {"id": "d"}
        ]});
        let n = nodes(Some(&m), &serde_json::json!({}));
        let l: Vec<(usize, usize)> = n.iter().map(|n| (n.layer, n.row)).collect();
        assert_eq!(l, [(0, 0), (1, 0), (2, 0), (0, 1)]);
        assert_eq!(n[2].deps, ["a", "b"]);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
