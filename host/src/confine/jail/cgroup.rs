//! A pids cgroup for the jail: the kernel counts every process (and
//! thread) the job's commands start, however they start it, and refuses a
//! `fork` past the limit with `EAGAIN`.
//!
//! cgroup v1 (a hierarchy with the `pids` controller) and v2 (a unified
//! hierarchy whose current group delegates `pids`) are both used where the
//! machine has them and procbridge may write there; otherwise the jail has
//! no pids cgroup and procbridge says so.

use std::io;
use std::path::{Path, PathBuf};

/// A cgroup created for one jail, removed when dropped (once empty).
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Creates a pids cgroup below this process's own, limited to `max`
    /// tasks.
    ///
    /// # Errors
    /// When the machine has no usable pids controller.
    pub(crate) fn create(max: u64) -> io::Result<PidsCgroup> {
        let parent = own_pids_group()?;
        remove_stale(&parent);
        let dir = parent.join(format!("procbridge-{}-{}", std::process::id(), unique()));
        std::fs::create_dir(&dir)?;
        let cgroup = PidsCgroup { dir };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string())?;
        Ok(cgroup)
    }

    /// Moves the process `pid` (and so what it starts later) into the group.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// The limit in force.
    #[cfg(test)]
    fn max(&self) -> String {
        std::fs::read_to_string(self.dir.join("pids.max")).unwrap_or_default()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // The last processes may still be on their way out.
        for _ in 0..100 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                _ => return,
            }
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The directory of this process's cgroup in a hierarchy with the pids
/// controller.
fn own_pids_group() -> io::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let groups = std::fs::read_to_string("/proc/self/cgroup")?;
    // cgroup v1: a hierarchy whose super options name `pids`.
    for line in mounts.lines() {
        let (mount, fs, options) = match mount_fields(line) {
            Some(fields) => fields,
            None => continue,
        };
        if fs == "cgroup" && options.split(',').any(|o| o == "pids") {
            if let Some(path) = group_path(&groups, |controllers| {
                controllers.split(',').any(|c| c == "pids")
            }) {
                return Ok(Path::new(mount).join(path.trim_start_matches('/')));
            }
        }
    }
    // cgroup v2: the unified hierarchy, if our group delegates pids.
    for line in mounts.lines() {
        let (mount, fs, _) = match mount_fields(line) {
            Some(fields) => fields,
            None => continue,
        };
        if fs != "cgroup2" {
            continue;
        }
        if let Some(path) = group_path(&groups, |controllers| controllers.is_empty()) {
            let dir = Path::new(mount).join(path.trim_start_matches('/'));
            let delegated = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
            if delegated || std::fs::write(dir.join("cgroup.subtree_control"), "+pids").is_ok() {
                return Ok(dir);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no cgroup hierarchy with the pids controller that procbridge may use",
    ))
}

/// The mount point, file-system type and super options of a mountinfo
/// line.
fn mount_fields(line: &str) -> Option<(&str, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let mount = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fs = right.next()?;
    let options = right.nth(1)?;
    Some((mount, fs, options))
}

/// This process's group path in the hierarchy whose controller list
/// satisfies `wanted`.
fn group_path(groups: &str, wanted: impl Fn(&str) -> bool) -> Option<String> {
    groups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        wanted(controllers).then(|| path.to_string())
    })
}

/// Removes the empty groups of procbridge processes that are gone (killed
/// before they could clean up).
fn remove_stale(parent: &Path) {
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(_) => return,
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("procbridge-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        if let Some(pid) = pid {
            // SAFETY: signal 0 only asks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_read() {
        let line = "35 24 0:31 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids";
        assert_eq!(
            mount_fields(line),
            Some(("/sys/fs/cgroup/pids", "cgroup", "rw,pids"))
        );
        let groups = "8:pids:/job\n0::/user.slice\n";
        assert_eq!(
            group_path(groups, |c| c.split(',').any(|c| c == "pids")).as_deref(),
            Some("/job")
        );
        assert_eq!(
            group_path(groups, |c| c.is_empty()).as_deref(),
            Some("/user.slice")
        );
    }

    #[test]
    fn a_cgroup_limits_and_cleans_up() {
        let cgroup = match PidsCgroup::create(7) {
            Ok(cgroup) => cgroup,
            // A machine without a usable pids controller.
            Err(_) => return,
        };
        assert_eq!(cgroup.max().trim(), "7");
        let dir = cgroup.dir.clone();
        drop(cgroup);
        assert!(!dir.exists());
    }
}
