//! End to end with several replicas: three `crosswalk serve` processes on one
//! PostgreSQL database (a throwaway cluster the test starts), driven over HTTP.
//!
//! - A mapping change acknowledged by one replica reaches the others, while a loop of
//!   transforms spread over all three runs: no request fails, and no replica goes back
//!   to an older version once it has answered a newer one.
//! - `Crosswalk-Mapping-Version` gives a client its own change on every replica.
//! - A replica whose change listener is killed (`pg_terminate_backend`) recovers by
//!   resync and hears later changes.
//! - A replica killed (SIGKILL) while delivering webhooks loses no event: another
//!   claims its deliveries when its claim expires.
//!
//! These fail, naming what is missing, where PostgreSQL cannot be started, unless
//! `CROSSWALK_SKIP_POSTGRES=1` leaves them out.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crosswalk_service::store::cluster::Cluster;
use serde_json::json;

use crate::server::{Server, kill9, request, try_request, try_request_with};
use crate::support;

/// A fleet: the cluster, its database, and replicas on it, each with a data dir of its
/// own (for its compiled-plugin cache).
struct Fleet {
    cluster: Cluster,
    url: String,
    dirs: Vec<std::path::PathBuf>,
}

impl Fleet {
    fn new() -> Option<Fleet> {
        let cluster = Cluster::start().unwrap_or_else(|why| panic!("{why}"))?;
        let url = cluster.database().unwrap();
        Some(Fleet {
            cluster,
            url,
            dirs: Vec::new(),
        })
    }

    /// Starts one more replica with these extra `serve` arguments.
    fn replica(&mut self, args: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "crosswalk-replica-{}-{}",
            std::process::id(),
            self.dirs.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut serve = vec!["--store", self.url.as_str()];
        serve.extend_from_slice(args);
        let server = Server::start_with(&dir, &serve);
        self.dirs.push(dir);
        server
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn payload() -> Vec<u8> {
    std::fs::read(support::root().join("examples/payloads/sap-s4hana/purchase_order/standard.json"))
        .unwrap()
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// A change on replica A is visible on B and C; a transform loop over the three
/// never fails and never goes back; a client naming the version it was given sees it
/// on every replica at once.
#[test]
fn mapping_changes_reach_every_replica_and_none_goes_back() {
    let Some(mut fleet) = Fleet::new() else {
        return;
    };
    let a = fleet.replica(&[]);
    let b = fleet.replica(&[]);
    let c = fleet.replica(&[]);
    assert!(
        !a.demo_key.is_empty() && b.demo_key.is_empty() && c.demo_key.is_empty(),
        "the first replica sets the store up, the others find it set up"
    );
    let key = a.demo_key.clone();
    let sap = a.sandbox("sap-s4hana");
    let mapping = format!("/v1/connections/{sap}/mappings/purchase_order");
    let transform = format!("/v1/connections/{sap}/transform/purchase_order");
    let payload = payload();
    let addrs = [a.addr.clone(), b.addr.clone(), c.addr.clone()];
    for addr in &addrs {
        let (status, version, body) = request(addr, "POST", &transform, &key, &payload);
        assert_eq!((status, version), (200, Some(0)), "{body}");
    }

    // The loop: transforms on A, B and C in turn, each kept with its replica.
    let stop = Arc::new(AtomicBool::new(false));
    type Seen = (usize, u16, Option<u64>);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let loader = {
        let (stop, seen, addrs, key, transform, payload) = (
            stop.clone(),
            seen.clone(),
            addrs.clone(),
            key.clone(),
            transform.clone(),
            payload.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = i % addrs.len();
                let (status, version) =
                    match try_request(&addrs[r], "POST", &transform, &key, &payload) {
                        Ok((status, version, _)) => (status, version),
                        Err(_) => (0, None),
                    };
                seen.lock().unwrap().push((r, status, version));
                i += 1;
            }
        })
    };

    // Changes on A; after each, how long until B answers it (without asking for it),
    // and C at once when asked for it.
    let mut visible = Vec::new();
    let mut stale_without_asking = 0;
    const CHANGES: u64 = 20;
    for n in 1..=CHANGES {
        let change = json!({"description": format!("change {n}"), "overrides": []});
        let (status, version, body) = request(
            &a.addr,
            "PUT",
            &mapping,
            &key,
            change.to_string().as_bytes(),
        );
        assert_eq!((status, version), (200, Some(n)), "{body}");
        let acknowledged = Instant::now();
        let (_, at_once, _) = request(&c.addr, "POST", &transform, &key, &payload);
        if at_once < Some(n) {
            stale_without_asking += 1;
        }
        let n_text = n.to_string();
        let (status, asked, body) = try_request_with(
            &c.addr,
            "POST",
            &transform,
            &key,
            &payload,
            &[("Crosswalk-Mapping-Version", &n_text)],
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(asked >= Some(n), "asked for {n}, answered {asked:?}");
        loop {
            let (status, version, body) = request(&b.addr, "GET", &mapping, &key, b"");
            assert_eq!(status, 200, "{body}");
            if version >= Some(n) {
                visible.push(acknowledged.elapsed());
                break;
            }
            assert!(
                acknowledged.elapsed() < Duration::from_secs(10),
                "version {n} did not reach replica B"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();

    let seen = seen.lock().unwrap();
    let failed = seen.iter().filter(|s| s.1 != 200).count();
    assert_eq!(failed, 0, "{failed} of {} transforms failed", seen.len());
    let mut last: BTreeMap<usize, u64> = BTreeMap::new();
    for (r, _, version) in seen.iter() {
        let version = version.expect("every answer names its version");
        let before = last.insert(*r, version).unwrap_or(0);
        assert!(
            version >= before,
            "replica {r} answered version {version} after {before}"
        );
    }
    println!(
        "{} transforms over 3 replicas during {CHANGES} changes, none failed, none went back; \
         change on A to visible on B: p50 {:?}, max {:?}; C answered the previous version \
         {stale_without_asking} time(s) right after an acknowledgement unless asked",
        seen.len(),
        quantile(&mut visible, 0.5),
        quantile(&mut visible, 1.0),
    );
    for server in [a, b, c] {
        server.stop();
    }
}

/// A mapping change on `server`, which must store it as `version`.
fn change(server: &Server, mapping: &str, key: &str, description: &str, version: u64) {
    let body = json!({"description": description, "overrides": []}).to_string();
    let (status, stored, answer) = request(&server.addr, "PUT", mapping, key, body.as_bytes());
    assert_eq!((status, stored), (200, Some(version)), "{answer}");
}

/// Waits until `server` answers `version` of the mapping (10 s at most).
fn until_version(server: &Server, mapping: &str, key: &str, version: u64) {
    let started = Instant::now();
    while request(&server.addr, "GET", mapping, key, b"").1 != Some(version) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replica {} never heard of version {version}",
            server.addr
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The listener connections are killed on the database side: the replicas reconnect,
/// resync, and hear the changes made after.
#[test]
fn a_replica_whose_listener_is_killed_resyncs_and_hears_again() {
    let Some(mut fleet) = Fleet::new() else {
        return;
    };
    let a = fleet.replica(&[]);
    let b = fleet.replica(&[]);
    let key = a.demo_key.clone();
    let sap = a.sandbox("sap-s4hana");
    let mapping = format!("/v1/connections/{sap}/mappings/purchase_order");
    let (status, version, _) = request(&b.addr, "GET", &mapping, &key, b"");
    assert_eq!((status, version), (200, Some(0)));
    let db = fleet.url.rsplit('/').next().unwrap().to_owned();
    let killed = fleet
        .cluster
        .psql(
            &db,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
        )
        .unwrap();
    assert_eq!(killed, "2", "one listener per replica");
    // A change made while the listeners may still be reconnecting.
    change(&a, &mapping, &key, "after the kill", 1);
    until_version(&b, &mapping, &key, 1);
    // Listening again: both reconnected.
    let started = Instant::now();
    while fleet
        .cluster
        .psql(
            &db,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
        )
        .unwrap()
        != "2"
    {
        assert!(started.elapsed() < Duration::from_secs(10), "the listeners did not come back");
        std::thread::sleep(Duration::from_millis(20));
    }
    change(&a, &mapping, &key, "later", 2);
    until_version(&b, &mapping, &key, 2);
    a.stop();
    b.stop();
}

/// A webhook receiver that takes `delay` to answer each delivery, keeping each one's
/// event id; answers 200.
fn slow_receiver(listener: std::net::TcpListener, delay: Duration) -> Arc<Mutex<Vec<String>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let (mut event, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = lower.strip_prefix("crosswalk-event-id:") {
                        event = v.trim().to_owned();
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                std::thread::sleep(delay);
                let answered = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                if answered.is_ok() {
                    keep.lock().unwrap().push(event);
                }
            });
        }
    });
    got
}

/// A replica is killed while it delivers a burst of events, holding the claim on the
/// subscription: another replica claims it when the claim expires and delivers the
/// rest, so that every event arrives (one perhaps twice, with the same id).
#[test]
fn a_replica_killed_mid_delivery_loses_no_event() {
    let Some(mut fleet) = Fleet::new() else {
        return;
    };
    let lease = ["--webhook-lease-ms", "11000"];
    // A alone makes and delivers the events, so that it holds the claim when killed.
    let a = fleet.replica(&lease);
    let key = a.demo_key.clone();
    let sap = a.sandbox("sap-s4hana");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hooks", listener.local_addr().unwrap());
    let received = slow_receiver(listener, Duration::from_millis(300));
    let subscribe = json!({"url": hook, "events": ["mapping.updated"]});
    let (status, _, body) = request(
        &a.addr,
        "POST",
        "/v1/webhooks",
        &key,
        subscribe.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    // Ten events, made on A: A delivers them, one at a time, 300 ms each.
    let mapping = format!("/v1/connections/{sap}/mappings/purchase_order");
    for n in 1..=10 {
        let change = json!({"description": format!("event {n}"), "overrides": []});
        let (status, _, body) = request(
            &a.addr,
            "PUT",
            &mapping,
            &key,
            change.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (_, _, history) = request(&a.addr, "GET", &format!("{mapping}/history"), &key, b"");
    assert_eq!(history["data"].as_array().unwrap().len(), 11);
    // Killed mid-way: some delivered, the rest claimed by A and left undelivered.
    let started = Instant::now();
    while received.lock().unwrap().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "A delivered nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill9(a);
    let killed = Instant::now();
    let at_kill = received.lock().unwrap().len();
    assert!(
        at_kill < 10,
        "A finished before it was killed ({at_kill} delivered)"
    );
    // B claims the subscription once A's claim expires (11 s) and delivers the rest.
    let b = fleet.replica(&lease);
    let started = Instant::now();
    loop {
        let distinct: BTreeSet<String> = received.lock().unwrap().iter().cloned().collect();
        if distinct.len() == 10 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of 10 events arrived after A was killed with {at_kill} delivered",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = received.lock().unwrap().len();
    println!(
        "A killed after {at_kill} deliveries; B delivered the rest {:.1} s later: 10 distinct events, {all} delivery(ies) in all",
        killed.elapsed().as_secs_f64()
    );
    b.stop();
}

/// Moving up: a deployment that started on the embedded store is copied into
/// PostgreSQL with `crosswalk store copy`, and a replica on PostgreSQL serves it as
/// it was: the same keys, the same connections, the same mapping version.
#[test]
fn store_copy_moves_an_embedded_store_into_postgres() {
    let Some(mut fleet) = Fleet::new() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("crosswalk-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let embedded = Server::start(&dir);
    let key = embedded.demo_key.clone();
    let sap = embedded.sandbox("sap-s4hana");
    let mapping = format!("/v1/connections/{sap}/mappings/purchase_order");
    change(&embedded, &mapping, &key, "before the move", 1);
    embedded.stop();

    let copy = |from: &str, to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_crosswalk"))
            .args(["store", "copy", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    let copied = copy(dir.to_str().unwrap(), &fleet.url);
    let stdout = String::from_utf8_lossy(&copied.stdout);
    assert!(
        copied.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert!(
        stdout.contains("2 tenants, 2 keys, 3 connections"),
        "{stdout}"
    );
    assert!(stdout.contains("1 mapping versions"), "{stdout}");
    assert!(stdout.contains("verified:"), "{stdout}");
    // Copied again: the target is not empty, and the error says what it holds.
    let again = copy(dir.to_str().unwrap(), &fleet.url);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("the store to copy into is not empty: it holds 2 tenants"),
        "{stderr}"
    );
    // A directory with no store in it.
    let nothing = copy("/nonexistent-crosswalk-dir", &fleet.url);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("holds no embedded store"));

    let replica = fleet.replica(&[]);
    assert!(
        replica.demo_key.is_empty(),
        "the copied store is set up already"
    );
    let (status, version, body) = request(&replica.addr, "GET", &mapping, &key, b"");
    assert_eq!((status, version), (200, Some(1)), "{body}");
    change(&replica, &mapping, &key, "after the move", 2);
    replica.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tenant's quota holds across replicas: creations racing on two replicas of one
/// store stop at the limit together.
#[test]
fn a_quota_holds_across_replicas() {
    let Some(mut fleet) = Fleet::new() else {
        return;
    };
    // The demo tenant has 3 sandbox connections; 5 allows 2 more.
    let a = fleet.replica(&["--max-connections", "5"]);
    let b = fleet.replica(&["--max-connections", "5"]);
    let key = a.demo_key.clone();
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let key = key.clone();
            std::thread::spawn(move || {
                let body =
                    json!({"system": "ibm-maximo", "name": format!("race {i}"), "mode": "sandbox"});
                let (status, _, answer) = request(
                    &addr,
                    "POST",
                    "/v1/connections",
                    &key,
                    body.to_string().as_bytes(),
                );
                (status, answer)
            })
        })
        .collect();
    let answers: Vec<(u16, serde_json::Value)> =
        racers.into_iter().map(|r| r.join().unwrap()).collect();
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 2, "{answers:?}");
    for (status, answer) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 422, "{answer}");
        assert_eq!(
            answer["error"]["details"]["limit"], "max_connections",
            "{answer}"
        );
    }
    let (_, _, listed) = request(&b.addr, "GET", "/v1/connections", &key, b"");
    assert_eq!(listed["data"].as_array().unwrap().len(), 5);
    a.stop();
    b.stop();
}
