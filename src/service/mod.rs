//! Services: the rules for managing users, clients and keys (validation,
//! uniqueness, hashing, the audit hook), shared by the CLI and (next) the
//! admin API, so that nothing is implemented twice. They know no HTTP.

pub mod keys;
