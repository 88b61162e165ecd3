//! A throwaway PostgreSQL cluster, for tests and benchmarks of the shared store.
//!
//! [`Cluster::start`] runs `initdb` into a new temporary directory and starts
//! `postgres` on a free loopback port, as the `postgres` system user when this process
//! is root (PostgreSQL refuses to run as root); dropping the [`Cluster`] stops the
//! server and removes the directory. Its binaries are found in `CROSSWALK_PG_BIN`, on
//! the `PATH`, or in Debian's `/usr/lib/postgresql/<version>/bin`; `scripts/setup`
//! installs Debian's `postgresql` where it is missing.
//!
//! A test that needs PostgreSQL fails, naming what is missing, when it cannot start
//! one, unless `CROSSWALK_SKIP_POSTGRES=1` says to leave such tests out; then
//! [`Cluster::start`] answers `None` and the test says that it was skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that leaves the tests that need PostgreSQL out.
pub const SKIP_ENV: &str = "CROSSWALK_SKIP_POSTGRES";

/// The user the cluster's superuser is named after.
const SUPERUSER: &str = "crosswalk";

/// A running throwaway cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    server: Option<Child>,
    bin: PathBuf,
    /// The user it runs as, when this process is root.
    user: Option<(u32, u32)>,
    databases: std::sync::atomic::AtomicU32,
}

impl Cluster {
    /// Starts a cluster; `Ok(None)` when `CROSSWALK_SKIP_POSTGRES=1` leaves it out.
    /// The error names what is missing or what failed.
    pub fn start() -> Result<Option<Cluster>, String> {
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            eprintln!("skipped: {SKIP_ENV}=1 leaves out the tests that need PostgreSQL");
            return Ok(None);
        }
        let bin = binaries()?;
        let user = run_as()?;
        let dir = std::env::temp_dir().join(format!(
            "crosswalk-pg-{}-{}",
            std::process::id(),
            crate::ids::random_id("c")
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to the postgres user: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            dir,
            port: 0,
            server: None,
            bin,
            user,
            databases: std::sync::atomic::AtomicU32::new(0),
        };
        let data = cluster.dir.join("data");
        let initdb = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .map_err(|e| format!("cannot run initdb from {}: {e}", cluster.bin.display()))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr).trim()
            ));
        }
        cluster.port = free_port()?;
        cluster.spawn_server()?;
        Ok(Some(cluster))
    }

    /// Stops the server (fast shutdown: open connections are ended), keeping its data:
    /// the database goes away until [`Cluster::restart`].
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            stop_server(&mut server);
        }
    }

    /// Starts the stopped server again, on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn_server()
    }

    fn spawn_server(&mut self) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        if let Some((uid, gid)) = self.user {
            let _ = std::os::unix::fs::chown(&log, Some(uid), Some(gid));
        }
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start postgres from {}: {e}", self.bin.display()))?;
        self.server = Some(server);
        self.wait_ready(&log)
    }

    /// The address of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new empty database of its own for one test or one fleet; answers its address.
    pub fn database(&self) -> Result<String, String> {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("crosswalk_{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Runs SQL on database `db` with `psql`; answers what it printed (unaligned,
    /// tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command.current_dir(&self.dir);
        command
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("ready to accept connections") {
                return Ok(());
            }
            if let Some(server) = self.server.as_mut()
                && let Ok(Some(status)) = server.try_wait()
            {
                return Err(format!(
                    "postgres stopped at start ({status}): {}",
                    text.trim()
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "postgres was not ready within 60 s: {}",
                    text.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops a server with SIGINT (PostgreSQL's fast shutdown), then SIGKILL if it is
/// still there after 10 s.
fn stop_server(server: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let stopping = Instant::now();
    while stopping.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = server.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// Where PostgreSQL's server binaries are.
fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("CROSSWALK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Debian links initdb onto the PATH at most; postgres lives beside the real one.
            if let Ok(real) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(parent) = real.parent()
                && has(parent)
            {
                return Ok(parent.to_owned());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "PostgreSQL is not installed: no initdb and postgres in CROSSWALK_PG_BIN, on the PATH or in /usr/lib/postgresql/*/bin; run scripts/setup (Debian's postgresql), or set {SKIP_ENV}=1 to leave these tests out"
        )
    })
}

/// The user and group to run PostgreSQL as: `postgres` when this process is root.
fn run_as() -> Result<Option<(u32, u32)>, String> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            "this process is root and PostgreSQL refuses to run as root, but there is no `postgres` user to run it as; run scripts/setup (Debian's postgresql makes the user)".to_owned()
        })
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
