//! An exclusive lock on a run directory for the time a runner works in it, so that two
//! processes never write the same stages at once (they would clobber each
//! other's staging directories). The lock is an OS file lock (`flock`) on `.lock`, which
//! holds the owner's pid for the message; the kernel releases it when the process ends in
//! any way (exit, panic, abort, SIGKILL), so a crashed run never leaves a lock that blocks
//! the next one, whatever process later gets its pid.

use std::fs::{File, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Held while a runner works in a run directory; removed on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: File,
}

impl RunLock {
    /// Takes the lock of `dir` (which must exist), or fails naming the process that holds it
    /// (`tool`, e.g. `emdesign`, names the program in the message).
    pub fn acquire(dir: &Path, tool: &str) -> Result<Self> {
        let path = dir.join(".lock");
        for _ in 0..5 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    let owner = owner.trim();
                    let who = if owner.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {owner})")
                    };
                    bail!(
                        "run directory {} is in use by another {tool} process{who}; \
                         wait for it to finish or use another run directory",
                        dir.display()
                    );
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            // A holder that was just finishing may have removed the file we opened: then
            // our lock is on a file nobody else sees; open the path again.
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| write!(file, "{}", std::process::id()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(Self { path, file });
        }
        bail!("cannot take the lock {}", path.display())
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock itself goes with the file handle.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_and_a_left_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "emdesign").unwrap();
        let e = format!(
            "{:#}",
            RunLock::acquire(dir.path(), "emdesign").unwrap_err()
        );
        assert!(
            e.contains("in use by another emdesign process")
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(lock);
        assert!(!dir.path().join(".lock").exists());
        // See: issue 20. A lock file left by a crashed run names a pid that may belong to a
        // live process by now (here: this one); it must not block.
        std::fs::write(dir.path().join(".lock"), std::process::id().to_string()).unwrap();
        let lock = RunLock::acquire(dir.path(), "emdesign").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".lock")).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
    }
}
