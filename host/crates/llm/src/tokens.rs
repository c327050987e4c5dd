//! Token counts as OpenAI's `cl100k_base` encoding gives them (GPT-4, GPT-3.5): the measure of the
//! context's size budget. Counted exactly with `tiktoken-rs`, whose byte-pair ranks are embedded in the crate
//! (nothing is downloaded). Loading the ranks takes a noticeable moment, once per process; the context cache
//! stores the count so a cache hit never loads them.

/// The number of `cl100k_base` tokens of `text` (special-token markers count as ordinary text).
pub fn count(text: &str) -> usize {
    tiktoken_rs::cl100k_base_singleton()
        .encode_ordinary(text)
        .len()
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_cl100k_tokens() {
        // Reference counts of the cl100k_base encoding (the `tiktoken` Python package gives the same).
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("tiktoken is great!"), 6);
    }
}
