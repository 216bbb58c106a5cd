//! Signing keys: list, rotate, import, export.
