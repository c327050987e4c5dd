//! The pipeline in a model's reply: the first fenced ```yaml (or ```yml, ```oml) block, else the first fenced
//! block that looks like OML, else the reply itself when it looks like OML.

/// The OML text of `reply`, or `None` when it holds none.
pub fn pipeline(reply: &str) -> Option<String> {
    let blocks = fenced(reply);
    let tagged = blocks
        .iter()
        .filter(|(lang, _)| matches!(lang.as_str(), "yaml" | "yml" | "oml"));
    let chosen = tagged
        .clone()
        .find(|(_, body)| looks_like_oml(body))
        .or_else(|| tagged.clone().next())
        .or_else(|| blocks.iter().find(|(_, body)| looks_like_oml(body)))
        .map(|(_, body)| body.clone());
    let text = match chosen {
        Some(t) => t,
        None if blocks.is_empty() && looks_like_oml(reply) => reply.to_string(),
        None => return None,
    };
    let text = text.trim_matches('\n').to_string();
    (!text.trim().is_empty()).then(|| format!("{}\n", text.trim_end()))
}

fn looks_like_oml(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("steps:") || l.starts_with("oml_version:"))
}

/// `(language, body)` of every fenced block (``` or ~~~), in order; an unclosed fence runs to the end.
fn fenced(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, String)> = None; // (fence, lang, body)
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                for fence in ["```", "~~~"] {
                    if let Some(rest) = trimmed.strip_prefix(fence) {
                        let lang = rest
                            .trim()
                            .trim_start_matches('{')
                            .split(|c: char| c.is_whitespace() || c == '}')
                            .next()
                            .unwrap_or_default()
                            .to_ascii_lowercase();
                        open = Some((fence.to_string(), lang, String::new()));
                        break;
                    }
                }
            }
            Some((fence, lang, body)) => {
                if trimmed.starts_with(fence.as_str())
                    && trimmed.trim_start_matches(['`', '~']).trim().is_empty()
                {
                    out.push((std::mem::take(lang), std::mem::take(body)));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((_, lang, body)) = open {
        out.push((lang, body));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pipeline;

    const OML: &str = "oml_version: \"0.1.0\"\nname: p\nsteps: []\n";

    #[test]
    fn takes_the_yaml_block() {
        let reply = format!("Here it is:\n\n```yaml\n{OML}```\n\nIt copies the table.");
        assert_eq!(pipeline(&reply).as_deref(), Some(OML));
    }

    #[test]
    fn prefers_the_block_that_is_a_pipeline() {
        let reply = format!(
            "Connections:\n```yaml\nsupabase:\n  main: {{}}\n```\nPipeline:\n```yml\n{OML}```\n"
        );
        assert_eq!(pipeline(&reply).as_deref(), Some(OML));
    }

    #[test]
    fn untagged_block_and_plain_yaml() {
        assert_eq!(pipeline(&format!("```\n{OML}```")).as_deref(), Some(OML));
        assert_eq!(pipeline(OML).as_deref(), Some(OML));
        assert_eq!(
            pipeline(&format!("~~~yaml\n{OML}~~~\n")).as_deref(),
            Some(OML)
        );
        // a reply cut off inside the block still yields what came
        assert_eq!(pipeline(&format!("```yaml\n{OML}")).as_deref(), Some(OML));
    }

    #[test]
    fn no_pipeline() {
        assert_eq!(pipeline("I cannot help with that."), None);
        assert_eq!(pipeline("```yaml\n\n```"), None);
        assert_eq!(pipeline("```python\nprint(1)\n```"), None);
    }
}
