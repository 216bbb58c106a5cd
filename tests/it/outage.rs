//! Issue 8.7: a database outage. The test runs its own PostgreSQL cluster
//! (initdb/pg_ctl on a spare port), stops it under a running server, and
//! starts it again: protocol endpoints answer 503 `temporarily_unavailable`,
//! pages a 503 page, `/readyz` fails, nothing is half-written, and the
//! server recovers on its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use tessera::clock::{Clock, FixedClock, SystemClock};

use crate::browser::{AuthRequest, Browser, add_user, refresh, rp, tokens, web_app};
use crate::harness::{TestDatabase, TestServer, eventually, http};

fn pg_bin(name: &str) -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .flatten()
        .map(|v| v.path().join("bin").join(name))
        .find(|p| p.exists())
}

/// Runs a PostgreSQL tool as the `postgres` user (initdb refuses root).
fn as_postgres(tool: &Path, args: &[&str]) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Cluster {
    pg_ctl: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        assert!(
            as_postgres(
                &self.pg_ctl,
                &[
                    "-D",
                    &self.dir.join("data").to_string_lossy(),
                    "-o",
                    &options,
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start"
        );
    }

    fn stop(&self) {
        assert!(
            as_postgres(
                &self.pg_ctl,
                &[
                    "-D",
                    &self.dir.join("data").to_string_lossy(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            ),
            "pg_ctl stop"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.pg_ctl,
            &[
                "-D",
                &self.dir.join("data").to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn status_of(url: String) -> StatusCode {
    http().get(url).send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_and_recovers_on_its_own() {
    let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
        eprintln!("skipped: PostgreSQL's initdb and pg_ctl are not installed");
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-pg-{}", crate::harness::random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = dir.join("data");
    assert!(
        as_postgres(
            &initdb,
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres"
            ]
        ),
        "initdb"
    );
    let cluster = Cluster { pg_ctl, dir, port };
    cluster.start();

    let db = Arc::new(TestDatabase::at(format!(
        "postgres://postgres@127.0.0.1:{port}/postgres"
    )));
    let server = TestServer::start_on(db, Arc::new(FixedClock::new(SystemClock.now())), |c| {
        c.login.failure_delay_ms = 0;
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let issued = tokens(&server, &app, &req, &code).await;
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(status_of(server.url("/readyz")).await, StatusCode::OK);

    cluster.stop();
    assert_eq!(
        status_of(server.url("/readyz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A page: the friendly 503 page.
    let page = Browser::new(&server)
        .get(&format!("/authorize?{}", AuthRequest::new(&app).query()))
        .await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Temporarily unavailable"),
        "{}",
        page.body
    );
    // A protocol endpoint: RFC 6749 JSON, with Retry-After.
    let (status, body) = refresh(&server, &app, &refresh_token, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    cluster.start();
    let ready = server.url("/readyz");
    eventually("the server is ready again", || {
        let ready = ready.clone();
        async move { status_of(ready).await == StatusCode::OK }
    })
    .await;
    // Nothing was half-written: the refresh token the outage refused still
    // rotates, once.
    let (status, body): (StatusCode, Value) = refresh(&server, &app, &refresh_token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}
