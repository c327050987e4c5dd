//! oml
