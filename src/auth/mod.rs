//! People: password hashing, the sign-in service, login throttling, and
//! what a login session holds.

pub mod password;
pub mod session;
pub mod signin;
pub mod throttle;
