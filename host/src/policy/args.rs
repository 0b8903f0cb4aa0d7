//! Argument rules of a granted command: subcommands, denied options (with
//! every abbreviation `getopt_long` could accept) and the allow-list form.

use super::ArgRules;

/// Why an argument list is refused, for the message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal<'a> {
    /// `argv[1]` is not one of the granted subcommands.
    Subcommand(&'a str),
    /// An argument hits a denied option.
    Denied(&'a str),
    /// An option is not on the allow-list.
    NotAllowed(&'a str),
}

impl ArgRules {
    /// Checks `args` (without `argv[0]`) against the rules.
    pub(super) fn check<'a>(&self, args: &'a [String]) -> Result<(), Refusal<'a>> {
        if let Some(allowed) = &self.subcommands {
            let sub = args.first().map(String::as_str).unwrap_or("");
            if !allowed.iter().any(|a| a == sub) {
                return Err(Refusal::Subcommand(sub));
            }
        }
        // Every argument is checked, even after `--`: a program may parse
        // its options its own way.
        for arg in args {
            if self.deny_flags.iter().any(|flag| hits(arg, flag)) {
                return Err(Refusal::Denied(arg));
            }
        }
        if let Some(allowed) = &self.allow_flags {
            for arg in options(args) {
                if !allowed_option(arg, allowed) {
                    return Err(Refusal::NotAllowed(arg));
                }
            }
        }
        Ok(())
    }
}

/// Whether `arg` could mean the denied option `flag`.
fn hits(arg: &str, flag: &str) -> bool {
    let (name, _value) = arg.split_once('=').unwrap_or((arg, ""));
    if name == flag {
        return true;
    }
    if let Some(long) = flag.strip_prefix("--") {
        // `--comp` or `--comp=x` for `--compress-program`: an abbreviation
        // getopt_long accepts when no other option shares the prefix; and
        // `-compress-prog` too, as getopt_long_only (and Perl's
        // Getopt::Long) accept long options behind one dash.
        let abbreviates = |given: &str, min: usize| given.len() >= min && long.starts_with(given);
        return match name.strip_prefix("--") {
            Some(given) => abbreviates(given, 1),
            None => name
                .strip_prefix('-')
                .is_some_and(|given| abbreviates(given, 2)),
        };
    }
    if let Some(letter) = short_letter(flag) {
        // `-xc` or `-cvalue` for `-c`: a cluster of one-letter options.
        return cluster(arg).is_some_and(|letters| letters.contains(letter));
    }
    false
}

/// The letter of a one-letter option (`-c`).
fn short_letter(flag: &str) -> Option<char> {
    let mut chars = flag.strip_prefix('-')?.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c != '-' => Some(c),
        _ => None,
    }
}

/// The letters of a short-option cluster (`-la`), if `arg` is one.
fn cluster(arg: &str) -> Option<&str> {
    let letters = arg.strip_prefix('-')?;
    (!letters.is_empty() && !letters.starts_with('-')).then_some(letters)
}

/// The arguments that look like options: they start with `-` and are not
/// `-` or `--` alone. Those after a `--` count too: a program may parse
/// its arguments its own way (GNU find runs its expression after `--`).
fn options(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| a.starts_with('-') && *a != "-" && *a != "--")
}

fn allowed_option(arg: &str, allowed: &[String]) -> bool {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    if allowed
        .iter()
        .any(|a| a == arg || (name.starts_with("--") && a == name))
    {
        return true;
    }
    // A cluster of allowed one-letter options.
    cluster(arg).is_some_and(|letters| {
        letters
            .chars()
            .all(|c| allowed.iter().any(|a| short_letter(a) == Some(c)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(deny: &[&str], allow: Option<&[&str]>) -> ArgRules {
        ArgRules {
            subcommands: None,
            deny_flags: deny.iter().map(|s| s.to_string()).collect(),
            allow_flags: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn check(rules: &ArgRules, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        rules.check(&args).map_err(|r| format!("{r:?}"))
    }

    #[test]
    fn long_options_are_denied_in_every_abbreviation() {
        let r = rules(&["--compress-program"], None);
        for arg in [
            "--compress-program",
            "--compress-program=gzip",
            "--compress-prog=sh",
            "--compr",
            "--c",
        ] {
            assert!(check(&r, &[arg]).is_err(), "{arg}");
        }
        for arg in [
            "--count",
            "--compress-programs",
            "-c",
            "compress-program",
            "--",
        ] {
            assert_eq!(check(&r, &[arg]), Ok(()), "{arg}");
        }
    }

    #[test]
    fn short_options_are_denied_inside_clusters() {
        let r = rules(&["-c"], None);
        for arg in ["-c", "-c=x", "-xc", "-cfoo", "-abc"] {
            assert!(check(&r, &[arg]).is_err(), "{arg}");
        }
        for arg in ["-x", "--config", "c", "-", "--c"] {
            assert_eq!(check(&r, &[arg]), Ok(()), "{arg}");
        }
        // Options of more than one letter behind one dash (find's) are
        // matched whole.
        let r = rules(&["-exec"], None);
        assert!(check(&r, &["-exec"]).is_err());
        assert_eq!(check(&r, &["-executable"]), Ok(()));
    }

    #[test]
    fn the_allow_list_admits_only_what_it_names() {
        let r = rules(&[], Some(&["-n", "-r", "--reverse", "--key"]));
        for args in [
            &["-n", "file"][..],
            &["-nr"],
            &["--reverse"],
            &["--key=2"],
            &["--", "file"],
            &["-", "x"],
        ] {
            assert_eq!(check(&r, args), Ok(()), "{args:?}");
        }
        // After `--` options are still options to some programs.
        assert_eq!(check(&r, &["--", "-z"]), Err("NotAllowed(\"-z\")".into()));
        for arg in ["-z", "-nz", "--rev", "--output=x", "-n3"] {
            assert_eq!(
                check(&r, &[arg]),
                Err(format!("NotAllowed({arg:?})")),
                "{arg}"
            );
        }
    }

    #[test]
    fn subcommands_come_first() {
        let r = ArgRules {
            subcommands: Some(vec!["diff".into()]),
            ..ArgRules::default()
        };
        assert_eq!(check(&r, &["diff", "x"]), Ok(()));
        assert_eq!(check(&r, &["push"]), Err("Subcommand(\"push\")".into()));
        assert_eq!(check(&r, &[]), Err("Subcommand(\"\")".into()));
    }
}
