//! `rediss://`: the store over TLS (feature `redis-tls`) against a real
//! redis-server with a TLS port and a certificate made for the test. The
//! store trusts the system's roots, and `SSL_CERT_FILE` where it is set
//! (rustls-native-certs reads it): the test re-runs itself with it pointing
//! at the test CA, since a process cannot safely change its own environment.
#![cfg(feature = "redis-tls")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reissue_core::SessionId;
use reissue_core::store::{
    ClientMeta, NewSession, RedisStore, RotateRequest, Rotation, SessionStore,
};
use reissue_test_support::RedisServer;
use reissue_test_support::redis::free_port;

const CHILD: &str = "REISSUE_TLS_TEST_PORT";

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {args:?}");
}

#[test]
fn rediss_url_connects_over_tls() {
    if let Ok(port) = std::env::var(CHILD) {
        return child(port.parse().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=reissue test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    // The plain port (the spawner's readiness check) beside the TLS one.
    let port = free_port();
    let tls_port = port.to_string();
    let server = RedisServer::start_in(
        d,
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
        ],
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rediss_url_connects_over_tls",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, port.to_string())
        .env("SSL_CERT_FILE", d.join("ca.pem"))
        .status()
        .unwrap();
    drop(server);
    assert!(status.success(), "the TLS run failed");
}

fn child(port: u16) {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            // The TLS port does not speak plain Redis.
            let plain = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
                .command_timeout(Duration::from_millis(500))
                .connect()
                .await;
            assert!(plain.is_err(), "plain Redis on a TLS port");
            let store = RedisStore::builder(format!("rediss://127.0.0.1:{port}"))
                .key_prefix("tls:")
                .connect()
                .await
                .expect("rediss:// connects, trusting SSL_CERT_FILE");
            let sid = SessionId::random();
            store
                .create(&NewSession::new(
                    "alice",
                    sid.clone(),
                    Duration::from_secs(60),
                    Duration::from_secs(60),
                ))
                .await
                .unwrap();
            let client = ClientMeta::default();
            let r = RotateRequest::new(
                "alice",
                &sid,
                1,
                Duration::ZERO,
                Duration::from_secs(60),
                &client,
            );
            assert!(matches!(
                store.rotate(&r).await.unwrap(),
                Rotation::Rotated(_)
            ));
            assert!(store.revoke("alice", &sid).await.unwrap());
            println!("rediss:// works: create, rotate, revoke over TLS");
        });
}
