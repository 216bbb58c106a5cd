//! `tessera user …` against a server's database, and login throttling
//! through `auth::throttle` against a server's state and clock (the
//! password check itself is the caller's, so tests decide its outcome).

use std::net::IpAddr;
use std::process::Output;
use std::sync::Mutex;

use serde_json::Value;
use tessera::auth::password::verify_password;
use tessera::auth::throttle::{self, Locked, ThrottleDecision};
use tessera::clock::Clock;
use tessera::domain::{LoginFailures, User};
use tessera::service::ServiceError;
use tessera::service::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use tessera::service::users::{self, NewUser};
use tessera::state::AppState;

use crate::harness::{Backend, TestServer, cli_on};

/// Runs the `tessera` binary on the server's database with `stdin`, off
/// the async workers.
async fn run_user_cli(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Output {
    let url = server.db.url.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_on(&url, &args, stdin.as_deref())
    })
    .await
    .unwrap()
}

async fn cli_json(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Value {
    let out = run_user_cli(server, args, stdin).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stderr}"))
}

/// A command that must fail with exit code 2, nothing on stdout and a
/// one-line reason on stderr; returns the reason.
async fn cli_refuses(server: &TestServer, args: &[&str], stdin: Option<&str>) -> String {
    let out = run_user_cli(server, args, stdin).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(
        stderr.trim().len() > "tessera:".len(),
        "{args:?}: no reason given"
    );
    stderr
}

async fn add_user(server: &TestServer, username: &str, password: &str) -> Value {
    cli_json(
        server,
        &["user", "add", username, "--password-stdin"],
        Some(&format!("{password}\n")),
    )
    .await
}

async fn stored(server: &TestServer, username: &str) -> Option<User> {
    server.state.store.user_by_username(username).await.unwrap()
}

async fn user_add_prints_sub_and_stores_an_argon2id_hash(backend: Backend) {
    let server = TestServer::start(backend).await;
    let out = cli_json(
        &server,
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Liddell",
        ],
        Some("correct horse battery staple\n"),
    )
    .await;
    let obj = out.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{out}");
    assert_eq!(out["username"], "alice");
    let sub = out["sub"].as_str().unwrap();
    assert!(sub.len() >= 22, "an opaque, unguessable sub: {sub}");
    assert!(!sub.contains("alice"));

    let user = stored(&server, "alice").await.expect("stored");
    assert_eq!(user.sub, sub);
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.name.as_deref(), Some("Alice Liddell"));
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains("correct horse"));
    // Exactly one trailing newline was dropped, nothing else.
    assert!(
        verify_password(
            Some(user.password_hash.clone()),
            "correct horse battery staple".into()
        )
        .await
    );
    assert!(
        !verify_password(
            Some(user.password_hash),
            "correct horse battery staple\n".into()
        )
        .await
    );

    // The sub is stable: the same user keeps it.
    assert_eq!(stored(&server, "alice").await.unwrap().sub, sub);
    // Another user gets a different one.
    let bob = add_user(&server, "bob", "hunter22").await;
    assert_ne!(bob["sub"], out["sub"]);
}

async fn user_add_refuses_bad_input(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice", "first").await;

    let taken = cli_refuses(
        &server,
        &["user", "add", "alice", "--password-stdin"],
        Some("second\n"),
    )
    .await;
    assert!(taken.contains("that username is taken"), "{taken}");
    let user = stored(&server, "alice").await.unwrap();
    assert!(verify_password(Some(user.password_hash), "first".into()).await);

    // No --password-stdin: refused before anything is read or stored.
    cli_refuses(&server, &["user", "add", "carol"], Some("pw\n")).await;
    // An empty password, with or without its newline.
    cli_refuses(
        &server,
        &["user", "add", "carol", "--password-stdin"],
        Some("\n"),
    )
    .await;
    cli_refuses(
        &server,
        &["user", "add", "carol", "--password-stdin"],
        Some(""),
    )
    .await;
    // Usernames: 1–64 characters, no whitespace or control characters.
    for bad in ["", "carol smith", "carol\tx", "carol\u{7}", &"x".repeat(65)] {
        cli_refuses(
            &server,
            &["user", "add", bad, "--password-stdin"],
            Some("pw\n"),
        )
        .await;
    }
    assert!(stored(&server, "carol").await.is_none());
    let longest = "é".repeat(64);
    add_user(&server, &longest, "pw").await;
    assert!(stored(&server, &longest).await.is_some());
}

async fn user_list_shows_users_without_hashes(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(
        cli_json(&server, &["user", "list"], None).await,
        Value::Array(vec![])
    );
    let alice = cli_json(
        &server,
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--email",
            "a@example.com",
        ],
        Some("pw-alice\n"),
    )
    .await;
    add_user(&server, "bob", "pw-bob").await;

    let out = run_user_cli(&server, &["user", "list"], None).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("argon2"), "{text}");
    assert!(!text.contains("pw-alice"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let first = list[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "email", "name", "sub", "username"]);
    let a = list.iter().find(|u| u["username"] == "alice").unwrap();
    assert_eq!(a["sub"], alice["sub"]);
    assert_eq!(a["email"], "a@example.com");
    assert_eq!(a["name"], Value::Null);
    assert!(a["created_at"].as_i64().unwrap() > 1_600_000_000);
    assert!(list.iter().any(|u| u["username"] == "bob"));
}

async fn user_passwd_replaces_the_hash(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = add_user(&server, "alice", "old password").await;
    let before = stored(&server, "alice").await.unwrap();

    let out = cli_json(
        &server,
        &["user", "passwd", "alice"],
        Some("new password\n"),
    )
    .await;
    assert_eq!(
        out,
        serde_json::json!({"sub": alice["sub"], "username": "alice"})
    );
    let after = stored(&server, "alice").await.unwrap();
    assert_eq!(after.sub, before.sub);
    assert_ne!(after.password_hash, before.password_hash);
    assert!(after.password_hash.starts_with("$argon2id$"));
    assert!(verify_password(Some(after.password_hash.clone()), "new password".into()).await);
    assert!(!verify_password(Some(after.password_hash.clone()), "old password".into()).await);

    // An unknown user or an empty password changes nothing.
    cli_refuses(&server, &["user", "passwd", "nobody"], Some("x\n")).await;
    cli_refuses(&server, &["user", "passwd", "alice"], Some("\n")).await;
    let unchanged = stored(&server, "alice").await.unwrap();
    assert_eq!(unchanged.password_hash, after.password_hash);
}

async fn user_delete_removes_the_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = add_user(&server, "alice", "pw").await;
    add_user(&server, "bob", "pw").await;
    let sub = alice["sub"].as_str().unwrap().to_string();

    let out = cli_json(&server, &["user", "delete", "alice"], None).await;
    assert_eq!(out, serde_json::json!({ "deleted": sub }));
    assert!(stored(&server, "alice").await.is_none());
    assert!(server.state.store.user(&sub).await.unwrap().is_none());
    let list = cli_json(&server, &["user", "list"], None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob"]);

    cli_refuses(&server, &["user", "delete", "alice"], None).await;
    cli_refuses(&server, &["user", "delete", "nobody"], None).await;
    // The name is free again, and a new user gets a new sub.
    let again = add_user(&server, "alice", "pw").await;
    assert_ne!(again["sub"], alice["sub"]);
}

/// An audit sink that keeps what it is given, for tests of the services.
#[derive(Default)]
pub(crate) struct RecordedEvents(Mutex<Vec<AuditEvent>>);

impl RecordedEvents {
    /// The events recorded since the last call.
    pub(crate) fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl AuditSink for RecordedEvents {
    async fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

fn new_user(username: &str, password: &str) -> NewUser {
    NewUser {
        username: username.into(),
        password: password.into(),
        email: None,
        name: None,
    }
}

/// The service the CLI (and next the admin API) calls: each change is
/// audited once, with the actor and the user's `sub`; a refused one is
/// not, and leaves the database as it was.
async fn user_service_audits_each_change_and_nothing_else(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = server.state.store.as_ref();
    let clock = server.clock.as_ref();
    let audit = RecordedEvents::default();
    let admin = Actor::Client("ops-console".into());
    let event = |kind, sub: &str| AuditEvent::user(kind, &admin, sub, clock.now());

    let alice = users::add(
        store,
        clock,
        &audit,
        &admin,
        new_user("alice", "first password"),
    )
    .await
    .unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.created_at, clock.now());
    assert_eq!(audit.take(), [event(AuditKind::UserCreated, &alice.sub)]);
    assert_eq!(
        users::find_by_username(store, "alice").await.unwrap(),
        alice
    );

    // Refusals: a taken name, a bad name, an empty password.
    let taken = users::add(store, clock, &audit, &admin, new_user("alice", "x")).await;
    assert!(
        matches!(&taken, Err(ServiceError::Conflict(m)) if m.contains("taken")),
        "{taken:?}"
    );
    for refused in [new_user("bad name", "x"), new_user("carol", "")] {
        let result = users::add(store, clock, &audit, &admin, refused).await;
        assert!(
            matches!(result, Err(ServiceError::Invalid(_))),
            "{result:?}"
        );
    }
    assert!(audit.take().is_empty());
    let names: Vec<String> = users::list(store)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice"]);
    let stored_alice = stored(&server, "alice").await.unwrap();
    assert!(verify_password(Some(stored_alice.password_hash), "first password".into()).await);

    server.clock.advance(10);
    users::set_password(store, clock, &audit, &admin, &alice, "second".into())
        .await
        .unwrap();
    assert_eq!(
        audit.take(),
        [event(AuditKind::UserPasswordChanged, &alice.sub)]
    );
    let after = stored(&server, "alice").await.unwrap();
    assert!(verify_password(Some(after.password_hash.clone()), "second".into()).await);
    assert_eq!(after.updated_at, clock.now());
    let empty = users::set_password(store, clock, &audit, &admin, &alice, String::new()).await;
    assert!(matches!(empty, Err(ServiceError::Invalid(_))), "{empty:?}");
    assert_eq!(
        stored(&server, "alice").await.unwrap().password_hash,
        after.password_hash
    );

    server.clock.advance(10);
    users::delete(store, clock, &audit, &admin, &alice)
        .await
        .unwrap();
    assert_eq!(audit.take(), [event(AuditKind::UserDeleted, &alice.sub)]);
    assert!(stored(&server, "alice").await.is_none());

    // The user is gone: every way to reach them is NotFound, and audited never.
    let gone = users::find_by_username(store, "alice").await;
    assert!(
        matches!(&gone, Err(ServiceError::NotFound(m)) if m.contains("alice")),
        "{gone:?}"
    );
    let again = users::delete(store, clock, &audit, &admin, &alice).await;
    assert!(matches!(again, Err(ServiceError::NotFound(_))), "{again:?}");
    let passwd = users::set_password(store, clock, &audit, &admin, &alice, "x".into()).await;
    assert!(
        matches!(passwd, Err(ServiceError::NotFound(_))),
        "{passwd:?}"
    );
    assert!(audit.take().is_empty());
}

async fn throttled_server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.login.failure_delay_ms = 0).await
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One sign-in with a wrong password: `Err` when refused before the
/// password check, else what the failure decided.
async fn fail(state: &AppState, name: &str, from: IpAddr) -> Result<ThrottleDecision, Locked> {
    let attempt = throttle::begin_attempt(&state.throttle(), name, from)
        .await
        .unwrap()?;
    Ok(throttle::attempt_failed(&state.throttle(), &attempt)
        .await
        .unwrap())
}

/// One sign-in with the right password; panics when it is refused.
async fn succeed(state: &AppState, name: &str, from: IpAddr) {
    let attempt = throttle::begin_attempt(&state.throttle(), name, from)
        .await
        .unwrap()
        .unwrap_or_else(|l| panic!("{name} from {from} refused: {l:?}"));
    throttle::attempt_succeeded(&state.throttle(), &attempt)
        .await
        .unwrap();
}

async fn counter(state: &AppState, key: &str) -> Option<LoginFailures> {
    state.store.login_failures(key).await.unwrap()
}

async fn throttle_locks_the_pair_not_the_account(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    let lockout = state.config.login.lockout_secs;
    let stranger = ip("192.0.2.10");

    assert_eq!(
        throttle::check(&state.throttle(), "alice", stranger)
            .await
            .unwrap(),
        ThrottleDecision::Allowed
    );
    for n in 1..max {
        let d = fail(state, "alice", stranger).await;
        assert_eq!(d, Ok(ThrottleDecision::Allowed), "failure {n} of {max}");
        server.clock.advance(1);
    }
    assert_eq!(
        fail(state, "alice", stranger).await,
        Ok(ThrottleDecision::Locked {
            retry_after_secs: lockout
        })
    );
    // The lock is the penalty: the pair's count starts over under it.
    let pair = throttle::pair_key("alice", stranger);
    let locked = counter(state, &pair).await.unwrap();
    assert_eq!(locked.failures, 0);
    assert_eq!(locked.locked_until, Some(server.clock.now() + lockout));
    // Locked for alice at that address whatever the case of the name;
    // refused attempts reach no password check and count nothing.
    for name in ["alice", "ALICE", "Alice"] {
        assert_eq!(
            fail(state, name, stranger).await,
            Err(Locked {
                retry_after_secs: lockout
            }),
            "{name}"
        );
    }
    assert_eq!(counter(state, &pair).await, Some(locked));
    // The owner, elsewhere, is not locked out by the stranger; nor is
    // another account at the stranger's address.
    for (name, from) in [("alice", ip("198.51.100.7")), ("bob", stranger)] {
        assert_eq!(
            throttle::check(&state.throttle(), name, from)
                .await
                .unwrap(),
            ThrottleDecision::Allowed,
            "{name} from {from}"
        );
    }
    succeed(state, "alice", ip("198.51.100.7")).await;

    server.clock.advance(lockout - 1);
    assert_eq!(
        fail(state, "alice", stranger).await,
        Err(Locked {
            retry_after_secs: 1
        })
    );
    server.clock.advance(1);
    // A full new allowance after the lock: max - 1 failures do not lock,
    // the max-th does.
    for n in 1..max {
        let d = fail(state, "alice", stranger).await;
        assert_eq!(
            d,
            Ok(ThrottleDecision::Allowed),
            "failure {n} after the lock"
        );
    }
    assert!(matches!(
        fail(state, "alice", stranger).await,
        Ok(ThrottleDecision::Locked { .. })
    ));
}

/// A stranger who knows the username, guessing from many addresses, only
/// slows the account down: the owner still signs in.
async fn throttle_strangers_cannot_lock_the_owner_out(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    for n in 0..10u8 {
        for _ in 0..max {
            let _ = fail(state, "alice", IpAddr::from([203, 0, 113, n])).await;
        }
    }
    assert!(
        counter(state, &throttle::account_key("alice"))
            .await
            .unwrap()
            .failures
            >= max * 10,
        "the account counts failures (for the slow-down)"
    );
    assert_eq!(
        throttle::check(&state.throttle(), "alice", ip("192.0.2.99"))
            .await
            .unwrap(),
        ThrottleDecision::Allowed
    );
    succeed(state, "alice", ip("192.0.2.99")).await;
}

async fn throttle_success_clears_and_remembers_the_address(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    let home = ip("192.0.2.20");

    for _ in 1..max {
        assert_eq!(
            fail(state, "alice", home).await,
            Ok(ThrottleDecision::Allowed)
        );
    }
    succeed(state, "Alice", home).await;
    assert_eq!(counter(state, &throttle::account_key("alice")).await, None);
    assert_eq!(
        counter(state, &throttle::pair_key("alice", home)).await,
        None
    );
    // A known address is never locked for that account, however often the
    // owner mistypes there; a new address still is.
    for _ in 0..max * 3 {
        assert_eq!(
            fail(state, "alice", home).await,
            Ok(ThrottleDecision::Allowed)
        );
    }
    succeed(state, "alice", home).await;
    let elsewhere = ip("192.0.2.21");
    for _ in 1..max {
        fail(state, "alice", elsewhere).await.unwrap();
    }
    assert!(matches!(
        fail(state, "alice", elsewhere).await,
        Ok(ThrottleDecision::Locked { .. })
    ));
    // Known only while recent.
    server
        .clock
        .advance(state.config.login.known_address_secs + 1);
    for _ in 1..max {
        fail(state, "alice", home).await.unwrap();
    }
    assert!(matches!(
        fail(state, "alice", home).await,
        Ok(ThrottleDecision::Locked { .. })
    ));
}

async fn throttle_failures_outside_the_window_start_over(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    let window = state.config.login.failure_window_secs;
    let addr = ip("192.0.2.30");

    for _ in 1..max {
        fail(state, "alice", addr).await.unwrap();
    }
    server.clock.advance(window);
    assert_eq!(
        fail(state, "alice", addr).await,
        Ok(ThrottleDecision::Allowed)
    );
    let count = counter(state, &throttle::pair_key("alice", addr))
        .await
        .unwrap();
    assert_eq!(count.failures, 1);
    assert_eq!(count.window_start, server.clock.now());
}

async fn throttle_locks_an_address_spraying_many_accounts(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    let lockout = state.config.login.lockout_secs;
    let sprayer = ip("203.0.113.5");
    // Someone who signed in from that address earlier stays welcome there.
    succeed(state, "regular", sprayer).await;

    let ip_limit = max * 4;
    for n in 1..ip_limit {
        let d = fail(state, &format!("user{n}"), sprayer).await;
        assert_eq!(d, Ok(ThrottleDecision::Allowed), "failure {n}");
    }
    assert_eq!(
        fail(state, "someone-else", sprayer).await,
        Ok(ThrottleDecision::Locked {
            retry_after_secs: lockout
        })
    );
    // Every account is refused from that address, none from another, and
    // the known pair still gets in.
    assert!(matches!(
        throttle::check(&state.throttle(), "user1", sprayer)
            .await
            .unwrap(),
        ThrottleDecision::Locked { .. }
    ));
    assert!(
        throttle::begin_attempt(&state.throttle(), "user1", sprayer)
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!(
        throttle::check(&state.throttle(), "user1", ip("203.0.113.6"))
            .await
            .unwrap(),
        ThrottleDecision::Allowed
    );
    succeed(state, "regular", sprayer).await;
    server.clock.advance(lockout);
    assert_eq!(
        throttle::check(&state.throttle(), "user1", sprayer)
            .await
            .unwrap(),
        ThrottleDecision::Allowed
    );
}

/// 32 people behind one NAT address signing in at once all get through
/// (successes are never counted against the address).
async fn throttle_successes_never_lock_a_shared_address(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let nat = ip("198.51.100.80");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..32 {
        let state = state.clone();
        tasks.spawn(async move {
            let name = format!("person{n}");
            let attempt = throttle::begin_attempt(&state.throttle(), &name, nat)
                .await
                .unwrap();
            let Ok(attempt) = attempt else {
                return false;
            };
            tokio::time::sleep(PASSWORD_CHECK).await;
            throttle::attempt_succeeded(&state.throttle(), &attempt)
                .await
                .unwrap();
            true
        });
    }
    let signed_in = tasks.join_all().await.into_iter().filter(|&ok| ok).count();
    assert_eq!(signed_in, 32);
    assert_eq!(
        throttle::check(&state.throttle(), "anyone", nat)
            .await
            .unwrap(),
        ThrottleDecision::Allowed
    );
}

/// How long the password check (argon2id) takes, for the parallel tests:
/// the window in which an attempt counted only after it could race.
const PASSWORD_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Parallel wrong passwords for one account from one address: counted on
/// the pair before the password check, so only `max_failures` of them get
/// one.
async fn throttle_parallel_guesses_get_at_most_the_limit(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let max = state.config.login.max_failures;
    let lockout = state.config.login.lockout_secs;
    let from = ip("203.0.113.50");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let state = state.clone();
        tasks.spawn(async move {
            match throttle::begin_attempt(&state.throttle(), "Alice", from)
                .await
                .unwrap()
            {
                Ok(attempt) => {
                    tokio::time::sleep(PASSWORD_CHECK).await;
                    throttle::attempt_failed(&state.throttle(), &attempt)
                        .await
                        .unwrap();
                    true
                }
                Err(Locked { retry_after_secs }) => {
                    assert!(retry_after_secs > 0 && retry_after_secs <= lockout);
                    false
                }
            }
        });
    }
    let verified = tasks
        .join_all()
        .await
        .into_iter()
        .filter(|&checked| checked)
        .count();
    assert_eq!(verified as i64, max, "password checks allowed");
    assert_eq!(
        throttle::check(&state.throttle(), "alice", from)
            .await
            .unwrap(),
        ThrottleDecision::Locked {
            retry_after_secs: lockout
        }
    );
}

/// Any username makes a short key: nothing a client sends can make the
/// store fail (PostgreSQL limits index rows to about 2.7 KB).
async fn throttle_takes_any_username(backend: Backend) {
    let server = throttled_server(backend).await;
    let state = &server.state;
    let addr = ip("192.0.2.40");
    let names = [
        "x".repeat(10_000),
        "ß".repeat(5_000),
        "\u{0}nul\u{202e}rtl İ\u{301}a\u{fe0f}🦀\u{10ffff}\u{fffd}'\";--".to_string(),
        String::new(),
    ];
    for name in &names {
        assert_eq!(
            throttle::check(&state.throttle(), name, addr)
                .await
                .unwrap(),
            ThrottleDecision::Allowed
        );
        let attempt = throttle::begin_attempt(&state.throttle(), name, addr)
            .await
            .unwrap()
            .unwrap();
        throttle::attempt_failed(&state.throttle(), &attempt)
            .await
            .unwrap();
        let count = counter(state, &throttle::account_key(name)).await.unwrap();
        assert_eq!(count.failures, 1);
        succeed(state, name, addr).await;
        assert_eq!(counter(state, &throttle::account_key(name)).await, None);
    }
}

crate::both_backends!(
    user_add_prints_sub_and_stores_an_argon2id_hash,
    user_add_refuses_bad_input,
    user_list_shows_users_without_hashes,
    user_passwd_replaces_the_hash,
    user_delete_removes_the_user,
    user_service_audits_each_change_and_nothing_else,
    throttle_locks_the_pair_not_the_account,
    throttle_strangers_cannot_lock_the_owner_out,
    throttle_success_clears_and_remembers_the_address,
    throttle_failures_outside_the_window_start_over,
    throttle_locks_an_address_spraying_many_accounts,
    throttle_successes_never_lock_a_shared_address,
    throttle_parallel_guesses_get_at_most_the_limit,
    throttle_takes_any_username,
);
