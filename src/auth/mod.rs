//! People: password hashing, login throttling, sessions and CSRF.

pub mod csrf;
pub mod password;
pub mod session;
pub mod throttle;
