//! Run locks, so that two processes never write the same stage at once (they would clobber
//! each other's staging directories): one on the whole run directory (`.lock`, held by a
//! plain run and by `clean`) and one per stage instance (`.<id>.lock`, held while that stage
//! is checked and run, so instances of one workflow run in parallel on different nodes).
//!
//! A lock file records its holder's host and pid, and appears atomically with both written
//! (a hard link of a finished temporary file). Its holder also keeps an OS file lock
//! (`flock`) on it, which the kernel releases when the process ends in any way (exit, panic,
//! abort, SIGKILL): a lock file of this host whose OS lock is free was left by a process
//! that is gone, whatever process has its pid by now, and is taken over with a warning. A
//! lock file of another host is never taken over (whether its process still runs cannot be
//! seen from here): `unlock` removes it explicitly.

use std::fs::{File, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Who wrote a lock file: host and pid (either may be absent in an old or damaged file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    /// Host name of the holder.
    pub host: Option<String>,
    /// Process id of the holder.
    pub pid: Option<u32>,
}

impl Owner {
    /// This process on this host.
    pub fn here() -> Self {
        Self {
            host: Some(hostname()),
            pid: Some(std::process::id()),
        }
    }

    /// Reads `pid N` / `host H` lines; a bare number is a pid (the format before hosts).
    pub fn parse(text: &str) -> Self {
        let mut owner = Self::default();
        for line in text.lines().map(str::trim) {
            if let Some(pid) = line.strip_prefix("pid ") {
                owner.pid = pid.trim().parse().ok();
            } else if let Some(host) = line.strip_prefix("host ") {
                owner.host = Some(host.trim().to_string()).filter(|h| !h.is_empty());
            } else if let Ok(pid) = line.parse() {
                owner.pid = Some(pid);
            }
        }
        owner
    }

    /// The file's contents.
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(pid) = self.pid {
            s.push_str(&format!("pid {pid}\n"));
        }
        if let Some(host) = &self.host {
            s.push_str(&format!("host {host}\n"));
        }
        s
    }

    /// Whether it was written on this host (a lock file without a host is taken for one).
    pub fn is_here(&self) -> bool {
        self.host.as_deref().is_none_or(|h| h == hostname())
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}")?,
            None => write!(f, "an unknown pid")?,
        }
        match &self.host {
            Some(h) if self.is_here() => write!(f, " on this host ({h})"),
            Some(h) => write!(f, " on host {h}"),
            None => write!(f, " on this host"),
        }
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `/etc/hostname`, `$HOSTNAME`).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The state of a lock file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Its OS lock is held: a process of this host is running with it.
    Running(Owner),
    /// Written on another host: whether its process runs cannot be seen from here.
    OtherHost(Owner),
    /// Written on this host by a process that is gone (its OS lock is free).
    Left(Owner),
}

/// Who holds the lock file `path`, `None` when there is none.
pub fn holder(path: &Path) -> Result<Option<Holder>> {
    Ok(inspect(path)?.map(|(_, holder)| holder))
}

/// The lock file `path` opened, with who holds it; unless [`Holder::Running`], the returned
/// handle holds its OS lock (so nobody takes it meanwhile). `None` when there is no file.
fn inspect(path: &Path) -> Result<Option<(File, Holder)>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let owner = Owner::parse(&text);
    let holder = match file.try_lock() {
        Err(TryLockError::WouldBlock) => Holder::Running(owner),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
        Ok(()) if owner.is_here() => Holder::Left(owner),
        Ok(()) => Holder::OtherHost(owner),
    };
    Ok(Some((file, holder)))
}

/// Held while a process works on what the lock guards; its file is removed on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: File,
    took_over: Option<String>,
}

impl RunLock {
    /// Takes the lock of run directory `dir` (which must exist), or fails naming the
    /// process that holds it (`tool`, e.g. `emdesign`, names the program in the message).
    pub fn acquire(dir: &Path, tool: &str) -> Result<Self> {
        Self::acquire_file(
            &dir.join(crate::run_dir::LOCK),
            &format!("run directory {}", dir.display()),
            &format!("{tool} unlock WORKFLOW"),
            tool,
        )
    }

    /// Takes the lock file `path` guarding `what` (`run directory D`); `unlock` is the
    /// command that removes a lock left on another host (`emdesign unlock WORKFLOW`).
    pub fn acquire_file(path: &Path, what: &str, unlock: &str, tool: &str) -> Result<Self> {
        let name = path
            .file_name()
            .map_or("lock".into(), |n| n.to_string_lossy());
        let tmp = path.with_file_name(format!("{name}.{}.tmp", std::process::id()));
        let mut took_over = None;
        for _ in 0..5 {
            // A finished lock file appears under its name in one step, already OS-locked.
            let file = write_locked(&tmp)?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        file,
                        took_over,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
            drop(file);
            let Some((existing, holder)) = inspect(path)? else {
                continue;
            };
            let owner = match holder {
                Holder::Running(owner) => bail!(
                    "{what} is in use by another {tool} process ({owner}); wait for it to \
                     finish or use another run directory"
                ),
                // Its holder may have just removed it and gone: then look again.
                _ if !same_file(&existing, path) => continue,
                Holder::OtherHost(owner) => bail!(
                    "{what} is locked by {tool} {owner}, where it may still run (this host \
                     cannot tell); if it does not, remove the lock with `{unlock}`"
                ),
                Holder::Left(owner) => owner,
            };
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            took_over = Some(format!(
                "took over the lock {} left by {owner}, which no longer runs",
                path.display()
            ));
        }
        bail!("cannot take the lock {}", path.display())
    }

    /// What was taken over, when the lock file was left by a process that is gone (for a
    /// warning).
    pub fn took_over(&self) -> Option<&str> {
        self.took_over.as_deref()
    }
}

/// `path` written with this process's owner lines and OS-locked by the returned handle.
fn write_locked(path: &Path) -> Result<File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.try_lock()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot lock {}", path.display()))?;
    file.write_all(Owner::here().text().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
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
        // Removed while still locked (unless `unlock` removed it and another took its
        // place); the OS lock goes with the file handle.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// Removes the lock file `path` for `unlock`: refuses one a running process of this host
/// holds; returns who had written it (`None`: there was none).
pub fn remove(path: &Path, tool: &str) -> Result<Option<Owner>> {
    let owner = match holder(path)? {
        None => return Ok(None),
        Some(Holder::Running(owner)) => bail!(
            "{} is held by a running {tool} process ({owner}); stop that process instead",
            path.display()
        ),
        Some(Holder::OtherHost(owner) | Holder::Left(owner)) => owner,
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Some(owner)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_and_a_left_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "emdesign").unwrap();
        assert!(lock.took_over().is_none());
        let e = format!(
            "{:#}",
            RunLock::acquire(dir.path(), "emdesign").unwrap_err()
        );
        assert!(
            e.contains("in use by another emdesign process")
                && e.contains(&format!("pid {} on this host", std::process::id())),
            "{e}"
        );
        drop(lock);
        assert!(!dir.path().join(".lock").exists());
        // See: issue 20. A lock file left by a crashed run names a pid that may belong to a
        // live process by now (here: this one); it must not block.
        std::fs::write(dir.path().join(".lock"), std::process::id().to_string()).unwrap();
        let lock = RunLock::acquire(dir.path(), "emdesign").unwrap();
        assert!(lock.took_over().unwrap().contains("which no longer runs"));
        let written = Owner::parse(&std::fs::read_to_string(dir.path().join(".lock")).unwrap());
        assert_eq!(written, Owner::here());
        drop(lock);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_lock_of_another_host_is_never_taken_and_unlock_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        std::fs::write(&path, "pid 4242\nhost elsewhere-node-7\n").unwrap();
        let e = format!(
            "{:#}",
            RunLock::acquire(dir.path(), "emdesign").unwrap_err()
        );
        assert!(
            e.contains("is locked by emdesign pid 4242 on host elsewhere-node-7")
                && e.contains("`emdesign unlock WORKFLOW`"),
            "{e}"
        );
        assert!(path.is_file());
        let held = RunLock::acquire_file(&dir.path().join(".a.lock"), "a", "u", "t").unwrap();
        assert!(matches!(
            holder(&dir.path().join(".a.lock")).unwrap(),
            Some(Holder::Running(_))
        ));
        assert!(remove(&dir.path().join(".a.lock"), "t").is_err());
        drop(held);
        let owner = remove(&path, "emdesign").unwrap().unwrap();
        assert_eq!(owner.host.as_deref(), Some("elsewhere-node-7"));
        assert_eq!(remove(&path, "emdesign").unwrap(), None);
        RunLock::acquire(dir.path(), "emdesign").unwrap();
    }
}
