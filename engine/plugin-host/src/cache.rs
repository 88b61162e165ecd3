//! Compiled plugins on disk, so that a restart does not compile them again.
//!
//! A file is named by the component's sha256 and a hash of the engine's compilation
//! settings (wasmtime's `precompile_compatibility_hash`), so a different wasmtime or
//! configuration never picks up another's artifact; wasmtime checks compatibility
//! again when loading, and a file that fails that check is compiled anew and replaced.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

/// The file of a compiled component in `dir`.
pub(super) fn artifact_path(dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}

/// Loads a compiled component from the cache, if a usable one is there.
pub(super) fn load(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: `Component::deserialize_file` runs the machine code in the file, so the
    // file must come from `Component::serialize` of a compatible engine. Only this
    // module writes to the cache directory, under a name that carries the component's
    // sha256 and the engine's compatibility hash, with a write-then-rename so a reader
    // never sees a partial file; the directory belongs to the service (its data dir).
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.ok()
}

/// Stores a compiled component in the cache. The caller treats a failure as a missed
/// cache entry, not as a failed load.
pub(super) fn store(component: &Component, path: &Path) -> Result<(), PluginError> {
    let error = |e: &dyn std::fmt::Display| PluginError::Cache {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let bytes = component.serialize().map_err(|e| error(&e))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| error(&e))?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let written = fs::write(&partial, bytes).and_then(|()| fs::rename(&partial, path));
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map_err(|e| error(&e))
}
