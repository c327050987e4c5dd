//! The Arrow extension types the database plugins put on columns and read back: what a column holds beyond
//! its storage type (JSON text, UUIDs in text form), so a writer creating a table gives it the faithful type.

use arrow_schema::{DataType, Field};

/// The field metadata key naming an Arrow extension type.
pub const EXTENSION_KEY: &str = "ARROW:extension:name";
/// Arrow's canonical JSON extension (storage Utf8): the extractors put it on JSON columns.
pub const JSON_EXTENSION: &str = "arrow.json";
/// A UUID in its 36-character text form (storage Utf8): postgres.extractor puts it on uuid columns.
pub const UUID_TEXT_EXTENSION: &str = "osiris.uuid";

/// The extension type named on a field, if any.
pub fn extension(f: &Field) -> Option<&str> {
    f.metadata().get(EXTENSION_KEY).map(String::as_str)
}

/// Whether values of `dt` are strings (also dictionary-encoded).
pub fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}
