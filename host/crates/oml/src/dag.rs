//! Step wiring: implicit and explicit dependencies, input aliases, a stable topological order and cycles.
//!
//! Rules (as the predecessor): a step with neither `needs` nor `inputs` depends on the previous step;
//! `needs: []` means no dependency; `inputs` adds the steps it names. Upstream outputs reach a step as
//! `df_<id>` (see [`alias_for`]) plus `df` when there is exactly one upstream.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One step as the wiring sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// `None`: no `needs` key.
    pub needs: Option<Vec<String>>,
    /// Step ids named in `inputs`, in the order written.
    pub input_steps: Vec<String>,
}

/// Why a step depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Needs,
    Input,
    /// No `needs`/`inputs`: the previous step.
    Implicit,
}

#[derive(Debug, Clone)]
pub struct Wiring {
    /// Per step (declaration index): upstream indices with the reason, sorted by declaration index, deduplicated.
    pub upstream: Vec<Vec<(usize, EdgeKind)>>,
    /// Stable topological order (ties by declaration order); `None` when there is a cycle.
    pub order: Option<Vec<usize>>,
    /// Each cycle once, as declaration indices in data-flow order (upstream first), first element repeated at the end.
    pub cycles: Vec<Vec<usize>>,
    /// Unknown ids in `needs`: (step index, position in needs, the id).
    pub unknown_needs: Vec<(usize, usize, String)>,
}

pub fn wire(nodes: &[Node]) -> Wiring {
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut upstream = Vec::with_capacity(nodes.len());
    let mut unknown_needs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut ups: BTreeMap<usize, EdgeKind> = BTreeMap::new();
        match &n.needs {
            Some(needs) => {
                for (pos, id) in needs.iter().enumerate() {
                    match index.get(id.as_str()) {
                        Some(&j) => {
                            ups.entry(j).or_insert(EdgeKind::Needs);
                        }
                        None => unknown_needs.push((i, pos, id.clone())),
                    }
                }
            }
            None if n.input_steps.is_empty() && i > 0 => {
                ups.insert(i - 1, EdgeKind::Implicit);
            }
            None => {}
        }
        for id in &n.input_steps {
            if let Some(&j) = index.get(id.as_str()) {
                ups.entry(j).or_insert(EdgeKind::Input);
            }
        }
        upstream.push(ups.into_iter().collect::<Vec<_>>());
    }

    // Kahn's algorithm, always taking the ready step declared first.
    let n = nodes.len();
    let mut indegree = vec![0usize; n];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ups) in upstream.iter().enumerate() {
        indegree[i] = ups.len();
        for (j, _) in ups {
            downstream[*j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    let mut cycles = Vec::new();
    if order.len() < n {
        let left: BTreeSet<usize> = (0..n).filter(|i| !order.contains(i)).collect();
        let mut seen_sets: BTreeSet<Vec<usize>> = BTreeSet::new();
        for &start in &left {
            if let Some(c) = find_cycle(start, &upstream, &left) {
                let mut key: Vec<usize> = c[..c.len() - 1].to_vec();
                key.sort_unstable();
                if seen_sets.insert(key) {
                    cycles.push(c);
                }
            }
        }
    }
    Wiring {
        upstream,
        order: if cycles.is_empty() && order.len() == n {
            Some(order)
        } else {
            None
        },
        cycles,
        unknown_needs,
    }
}

/// A cycle reachable from `start` following upstream edges, rotated to begin at its first-declared step and
/// returned in data-flow order.
fn find_cycle(
    start: usize,
    upstream: &[Vec<(usize, EdgeKind)>],
    left: &BTreeSet<usize>,
) -> Option<Vec<usize>> {
    let mut path: Vec<usize> = vec![start];
    let mut on_path: BTreeSet<usize> = [start].into();
    let mut next_edge: Vec<usize> = vec![0];
    let mut done: BTreeSet<usize> = BTreeSet::new();
    while let Some(&top) = path.last() {
        let k = next_edge.last_mut().unwrap();
        let edges: Vec<usize> = upstream[top]
            .iter()
            .map(|(j, _)| *j)
            .filter(|j| left.contains(j))
            .collect();
        if *k < edges.len() {
            let j = edges[*k];
            *k += 1;
            if on_path.contains(&j) {
                let pos = path.iter().position(|&p| p == j).unwrap();
                // path[pos..] follows "needs" edges: each needs the next. Data flows the other way.
                let mut cyc: Vec<usize> = path[pos..].to_vec();
                cyc.reverse();
                let min_pos = cyc
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, v)| **v)
                    .map(|(i, _)| i)
                    .unwrap();
                cyc.rotate_left(min_pos);
                cyc.push(cyc[0]);
                return Some(cyc);
            }
            if !done.contains(&j) {
                path.push(j);
                on_path.insert(j);
                next_edge.push(0);
            }
        } else {
            done.insert(top);
            on_path.remove(&top);
            path.pop();
            next_edge.pop();
        }
    }
    None
}

/// `df_<id>` with every character outside `[0-9A-Za-z_]` replaced by `_` and a `_` before a leading digit.
pub fn sanitize(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Input alias of every step id: `df_<sanitized>`; ids whose sanitized forms collide all get
/// `_<first 8 hex of sha256(id)>` appended, so the alias never depends on declaration order.
pub fn aliases(ids: &[&str]) -> BTreeMap<String, String> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for id in ids {
        groups.entry(sanitize(id)).or_default().push(id);
    }
    let mut out = BTreeMap::new();
    for (s, members) in groups {
        let distinct: BTreeSet<&str> = members.iter().copied().collect();
        for id in distinct.iter() {
            let alias = if distinct.len() > 1 {
                let h = hex::encode(Sha256::digest(id.as_bytes()));
                format!("df_{s}_{}", &h[..8])
            } else {
                format!("df_{s}")
            };
            out.insert(id.to_string(), alias);
        }
    }
    out
}

pub fn alias_for(id: &str, all: &BTreeMap<String, String>) -> String {
    all.get(id)
        .cloned()
        .unwrap_or_else(|| format!("df_{}", sanitize(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, needs: Option<&[&str]>, inputs: &[&str]) -> Node {
        Node {
            id: id.into(),
            needs: needs.map(|n| n.iter().map(|s| s.to_string()).collect()),
            input_steps: inputs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn implicit_previous_step_and_explicit_empty_needs() {
        let w = wire(&[
            node("a", None, &[]),
            node("b", None, &[]),
            node("c", Some(&[]), &[]),
            node("d", None, &["a"]),
        ]);
        assert_eq!(w.upstream[1], vec![(0, EdgeKind::Implicit)]);
        assert!(w.upstream[2].is_empty());
        assert_eq!(w.upstream[3], vec![(0, EdgeKind::Input)]);
        assert_eq!(w.order, Some(vec![0, 1, 2, 3]));
    }

    #[test]
    fn forward_references_sort_topologically_with_ties_by_declaration() {
        let w = wire(&[
            node("join", Some(&["x", "y"]), &[]),
            node("y", Some(&[]), &[]),
            node("x", Some(&[]), &[]),
        ]);
        assert_eq!(w.order, Some(vec![1, 2, 0]));
        assert_eq!(
            w.upstream[0],
            vec![(1, EdgeKind::Needs), (2, EdgeKind::Needs)]
        );
    }

    #[test]
    fn cycles_are_found_and_printed_once() {
        // a needs b; b implicitly needs a.
        let w = wire(&[
            node("a", Some(&["b"]), &[]),
            node("b", None, &[]),
            node("c", Some(&["b"]), &[]),
        ]);
        assert_eq!(w.order, None);
        assert_eq!(w.cycles, vec![vec![0, 1, 0]]);
        let w = wire(&[node("a", Some(&["a"]), &[])]);
        assert_eq!(w.cycles, vec![vec![0, 0]]);
        let w = wire(&[
            node("a", Some(&["c"]), &[]),
            node("b", Some(&["a"]), &[]),
            node("c", Some(&["b"]), &[]),
        ]);
        // data flows c -> a -> b -> c; printed from the first-declared step.
        assert_eq!(w.cycles, vec![vec![0, 1, 2, 0]]);
    }

    #[test]
    fn unknown_needs_are_reported() {
        let w = wire(&[
            node("a", Some(&[]), &[]),
            node("b", Some(&["a", "zz"]), &[]),
        ]);
        assert_eq!(w.unknown_needs, vec![(1, 1, "zz".to_string())]);
    }

    #[test]
    fn aliases_follow_the_predecessor_rule() {
        let a = aliases(&["extract-orders", "1st", "a.b", "a-b", "ok_1"]);
        assert_eq!(a["extract-orders"], "df_extract_orders");
        assert_eq!(a["1st"], "df__1st");
        assert_eq!(a["ok_1"], "df_ok_1");
        let ab = &a["a.b"];
        let a_b = &a["a-b"];
        assert!(
            ab.starts_with("df_a_b_") && ab.len() == "df_a_b_".len() + 8,
            "{ab}"
        );
        assert_ne!(ab, a_b);
        assert_eq!(&ab[7..], &hex::encode(Sha256::digest(b"a.b"))[..8]);
    }
}
