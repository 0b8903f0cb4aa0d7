//! `procbridge cache`: list, measure, clean and trim the module cache.

use super::completions::write_stdout;
use super::ExitCode;
use clap::{Args, Subcommand};
use procbridge::diag::{self, Verbosity};
use procbridge::ModuleCache;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Where the cache is and how large it may grow: one set of flags for
/// `run`, `python`, `compile` and `cache`, so their help and defaults
/// cannot drift.
#[derive(Debug, Args)]
pub(crate) struct CacheOptions {
    /// Keep compiled modules in DIR (default: $PROCBRIDGE_CACHE_DIR,
    /// $XDG_CACHE_HOME/procbridge or ~/.cache/procbridge). Entries are
    /// authenticated with a key in $XDG_CONFIG_HOME/procbridge/cache.key
    /// (or ~/.config/procbridge/cache.key); a job does not use the cache
    /// when a granted directory is inside or around it, or holds the key.
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Most the cached modules may take, in MiB (default
    /// $PROCBRIDGE_CACHE_MAX_MB, else 1024); the least recently used go
    /// first.
    #[arg(long, value_name = "MB", global = true)]
    cache_max_mb: Option<u64>,
}

impl CacheOptions {
    /// The cache these flags name.
    ///
    /// # Errors
    /// When there is no place for it (no flag, and none of the variables
    /// set).
    pub(crate) fn cache(&self) -> Result<ModuleCache, (ExitCode, anyhow::Error)> {
        let max_bytes = self.max_bytes().map_err(|e| (ExitCode::Usage, e))?;
        let dir = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None => ModuleCache::default_dir().ok_or_else(|| {
                (
                    ExitCode::Usage,
                    anyhow::anyhow!(
                        "no place for the module cache: give --cache-dir, or set \
                         PROCBRIDGE_CACHE_DIR, XDG_CACHE_HOME or HOME"
                    ),
                )
            })?,
        };
        Ok(ModuleCache::new(dir).max_bytes(max_bytes))
    }

    /// The cap: --cache-max-mb, else $PROCBRIDGE_CACHE_MAX_MB, else the
    /// default.
    ///
    /// # Errors
    /// When $PROCBRIDGE_CACHE_MAX_MB is set but not a number of MiB.
    pub(crate) fn max_bytes(&self) -> anyhow::Result<u64> {
        if let Some(mb) = self.cache_max_mb {
            return Ok(mb.saturating_mul(1 << 20));
        }
        match std::env::var_os("PROCBRIDGE_CACHE_MAX_MB") {
            None => Ok(ModuleCache::default_max_bytes()),
            Some(value) => match value.to_str().map(|v| v.trim().parse::<u64>()) {
                Some(Ok(mb)) => Ok(mb.saturating_mul(1 << 20)),
                _ => Err(anyhow::anyhow!(
                    "PROCBRIDGE_CACHE_MAX_MB={value:?}: give a whole number of MiB \
                     (or unset it for the default, 1024)"
                )),
            },
        }
    }
}

/// Work with the cache of compiled modules (see also `procbridge compile`).
///
/// Entries are native code compiled from modules, authenticated with the
/// user's cache key; a module is compiled again when its entry is gone.
#[derive(Debug, Args)]
pub(crate) struct CacheCommand {
    #[command(flatten)]
    noise: super::Noise,

    #[command(flatten)]
    options: CacheOptions,

    #[command(subcommand)]
    action: CacheAction,
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// List the compiled modules, most recently used first (when last
    /// used, size, the module compiled), then their total.
    List,
    /// Print the total size of the compiled modules, their number and the
    /// cap.
    Size,
    /// Remove every compiled module (or those unused for a while).
    Clean {
        /// Only those not used for this long: a number and s, m, h, d or w
        /// (30d: thirty days).
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<Duration>,
    },
    /// Remove the least recently used modules until the rest fit under
    /// the cap (--cache-max-mb), as each run that compiles does.
    Trim,
}

impl CacheCommand {
    /// Its -v/-q flags.
    pub(crate) fn noise(&self) -> super::Noise {
        self.noise
    }

    pub(crate) fn execute(self) -> i32 {
        match self.run() {
            Ok(out) => write_stdout(out.as_bytes()),
            Err((code, err)) => {
                eprintln!("procbridge: {err:#}");
                code as i32
            }
        }
    }

    /// Does the action; what it prints on stdout.
    fn run(&self) -> Result<String, (ExitCode, anyhow::Error)> {
        let cache = self.options.cache()?;
        let failed = |e: anyhow::Error| (ExitCode::Internal, e);
        let quiet = diag::verbosity() == Verbosity::Quiet;
        let mut out = String::new();
        match &self.action {
            CacheAction::List => {
                let entries = cache.entries().map_err(failed)?;
                if !entries.is_empty() {
                    let _ = writeln!(out, "{:<16}  {:>9}  MODULE", "LAST USED", "SIZE");
                }
                for entry in &entries {
                    let module = match &entry.module {
                        Some(module) => shown(module),
                        None => "(not recorded: compiled by an earlier procbridge)".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "{:<16}  {:>9}  {module}",
                        local_time(entry.last_used),
                        diag::size(entry.size),
                    );
                }
                let _ = writeln!(out, "{}", total(&cache, &entries));
            }
            CacheAction::Size => {
                let entries = cache.entries().map_err(failed)?;
                let _ = writeln!(out, "{}", total(&cache, &entries));
            }
            CacheAction::Clean { older_than } => {
                let removed = cache.clean(*older_than).map_err(failed)?;
                if !quiet {
                    let _ = writeln!(
                        out,
                        "removed {} compiled module{} ({}) from {}",
                        removed.entries,
                        plural(removed.entries),
                        diag::size(removed.bytes),
                        cache.dir().display()
                    );
                }
            }
            CacheAction::Trim => {
                let removed = cache.trim().map_err(failed)?;
                if !quiet {
                    let _ = writeln!(
                        out,
                        "removed {} compiled module{} ({}): the rest fit under {} MiB",
                        removed.entries,
                        plural(removed.entries),
                        diag::size(removed.bytes),
                        cache.size_cap() >> 20
                    );
                }
            }
        }
        Ok(out)
    }
}

/// `N compiled modules, SIZE (at most CAP MiB) in DIR`.
fn total(cache: &ModuleCache, entries: &[procbridge::cache::CacheEntry]) -> String {
    let bytes: u64 = entries.iter().map(|e| e.size).sum();
    format!(
        "{} compiled module{}, {} (at most {} MiB) in {}",
        entries.len(),
        plural(entries.len()),
        diag::size(bytes),
        cache.size_cap() >> 20,
        cache.dir().display()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A module's name as recorded, control characters escaped.
fn shown(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM` in local time.
fn local_time(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: an all-zero tm is a valid value to be overwritten.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `secs` and writes `tm`, both valid.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "?".to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// `30d`, `12h`, `90m`, `45s`, `2w`.
fn parse_age(text: &str) -> Result<Duration, String> {
    let wrong = || format!("{text:?}: give a number and a unit, s, m, h, d or w (as in 30d)");
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(wrong)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| wrong())?;
    let unit_secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(wrong()),
    };
    Ok(Duration::from_secs(number.saturating_mul(unit_secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_units() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("3x").is_err());
    }
}
