//! `crosswalk store copy`: moves everything a store holds into another, empty one, so
//! that a deployment that started on the embedded store can move to PostgreSQL (or
//! back) without losing its history. The copy is read in one pass, written in one
//! go, and verified by reading the target back and comparing the counts of every
//! kind of record.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use crosswalk_service::store::{PgOptions, PgStore, SledStore, Store, redact};

/// Where a store is: a PostgreSQL address, or a data dir whose embedded store is
/// `<dir>/db`.
fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Opens a store; `create` makes an embedded one that is not there yet.
async fn open(location: &str, create: bool) -> Result<Arc<dyn Store>> {
    if is_postgres(location) {
        let store = PgStore::open(location, PgOptions::default())
            .await
            .with_context(|| format!("cannot open the store {}", redact(location)))?;
        return Ok(Arc::new(store));
    }
    let db = Path::new(location).join("db");
    if !create && !db.is_dir() {
        bail!(
            "{location} holds no embedded store (no {}): give the --data-dir the server ran with, or a postgres:// address",
            db.display()
        );
    }
    if create {
        std::fs::create_dir_all(location).with_context(|| format!("cannot create {location}"))?;
    }
    let store =
        SledStore::open(&db).with_context(|| format!("cannot open the store in {location}"))?;
    Ok(Arc::new(store))
}

/// Copies the store at `from` into the empty store at `to`.
pub(crate) fn copy(from: &str, to: &str, out: &mut impl Write) -> Result<()> {
    if from == to {
        bail!("--from and --to are the same store ({})", redact(from));
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let counts = runtime.block_on(async {
        let source = open(from, false).await?;
        let target = open(to, true).await?;
        let dump = source
            .dump()
            .await
            .with_context(|| format!("cannot read {}", redact(from)))?;
        target
            .load(&dump)
            .await
            .with_context(|| format!("cannot write {}", redact(to)))?;
        let copied = target
            .dump()
            .await
            .with_context(|| format!("cannot read {} back", redact(to)))?
            .counts();
        if copied != dump.counts() {
            bail!(
                "the copy does not match: {} holds {}, and {} now holds {}",
                redact(from),
                dump.counts(),
                redact(to),
                copied
            );
        }
        anyhow::Ok(copied)
    })?;
    writeln!(out, "copied {} into {}:", redact(from), redact(to))?;
    writeln!(out, "  {counts}")?;
    writeln!(out, "verified: {} holds the same counts", redact(to))?;
    Ok(())
}
