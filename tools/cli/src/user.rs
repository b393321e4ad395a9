//! `krait user`: SCRAM users (AlterUserScramCredentials and DescribeUserScramCredentials
//! through krait-admin). Passwords are salted and hashed here; only the salted password
//! travels, and a password is read from a file or stdin rather than the command line when it
//! should not show in `ps`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use krait_admin::{DEFAULT_ITERATIONS, ScramUser};
use krait_auth::scram::ScramMechanism;
use serde::Serialize;

use crate::client::Global;
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user or change its password, for one SCRAM mechanism.
    SetPassword(SetPasswordArgs),
    /// Users and their SCRAM mechanisms (every user with credentials when none is named).
    Describe { names: Vec<String> },
    /// Delete a user's SCRAM credentials (every mechanism it has, or one).
    Delete {
        name: String,
        /// Only this mechanism's credential.
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Option<ScramMechanism>,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").args(["password", "password_file"])))]
pub struct SetPasswordArgs {
    name: String,
    /// SCRAM-SHA-512 or SCRAM-SHA-256.
    #[arg(long, default_value = "SCRAM-SHA-512", value_parser = parse_mechanism)]
    mechanism: ScramMechanism,
    /// The password (visible to other local users in `ps`; prefer --password-file or stdin).
    #[arg(long)]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// PBKDF2 iterations (Kafka's minimum is 4096).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
    iterations: u32,
}

pub fn parse_mechanism(s: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(&s.trim().to_ascii_uppercase())
        .ok_or_else(|| format!("expected SCRAM-SHA-512 or SCRAM-SHA-256, got {s:?}"))
}

pub fn run(g: &Global, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::SetPassword(a) => set_password(g, &a),
        UserCommand::Describe { names } => describe(g, &names),
        UserCommand::Delete { name, mechanism } => delete(g, &name, mechanism),
    }
}

/// The first line of `reader`, without its line ending; an empty password is refused.
pub fn first_line(mut reader: impl BufRead, origin: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .with_context(|| format!("cannot read the password from {origin}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("the password from {origin} is empty");
    }
    Ok(password)
}

fn password(a: &SetPasswordArgs) -> anyhow::Result<String> {
    match (&a.password, &a.password_file) {
        (Some(p), _) if p.is_empty() => bail!("the password is empty"),
        (Some(p), _) => Ok(p.clone()),
        (None, Some(path)) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            first_line(std::io::BufReader::new(file), &display(path))
        }
        (None, None) => first_line(std::io::stdin().lock(), "stdin"),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[derive(Debug, Serialize)]
struct Changed {
    user: String,
    mechanisms: Vec<&'static str>,
}

fn set_password(g: &Global, a: &SetPasswordArgs) -> anyhow::Result<()> {
    let password = password(a)?;
    g.session()?
        .set_scram_password(&a.name, a.mechanism, &password, a.iterations)?;
    let done = Changed {
        user: a.name.clone(),
        mechanisms: vec![a.mechanism.name()],
    };
    print(g.output, &done, |d| {
        format!("set the {} password of user {}", d.mechanisms[0], d.user)
    })
}

fn user_table(users: &Vec<ScramUser>) -> String {
    let mut t = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
    for u in users {
        for c in &u.credentials {
            t.row(vec![
                u.user.clone(),
                c.mechanism.clone(),
                c.iterations.to_string(),
            ]);
        }
    }
    t.render()
}

fn describe(g: &Global, names: &[String]) -> anyhow::Result<()> {
    let named = (!names.is_empty()).then_some(names);
    let users = g.session()?.describe_scram_users(named)?;
    print(g.output, &users, user_table)
}

fn delete(g: &Global, name: &str, mechanism: Option<ScramMechanism>) -> anyhow::Result<()> {
    let mut admin = g.session()?;
    let mechanisms = match mechanism {
        Some(m) => vec![m],
        None => admin
            .describe_scram_users(Some(&[name.to_string()]))?
            .iter()
            .flat_map(|u| &u.credentials)
            .filter_map(|c| ScramMechanism::from_name(&c.mechanism))
            .collect(),
    };
    for m in &mechanisms {
        admin.delete_scram(name, *m)?;
    }
    let done = Changed {
        user: name.to_string(),
        mechanisms: mechanisms.iter().map(|m| m.name()).collect(),
    };
    print(g.output, &done, |d| {
        format!(
            "deleted the {} credentials of user {}",
            d.mechanisms.join(" and "),
            d.user
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_the_first_line_without_its_ending() {
        assert_eq!(first_line(&b"s3cret\r\nrest\n"[..], "f").unwrap(), "s3cret");
        assert_eq!(first_line(&b"  spaced  "[..], "f").unwrap(), "  spaced  ");
        let err = first_line(&b"\n"[..], "stdin").unwrap_err().to_string();
        assert_eq!(err, "the password from stdin is empty");
    }

    #[test]
    fn mechanisms_parse_in_any_case() {
        assert_eq!(parse_mechanism("scram-sha-256"), Ok(ScramMechanism::Sha256));
        assert_eq!(parse_mechanism("SCRAM-SHA-512"), Ok(ScramMechanism::Sha512));
        assert!(parse_mechanism("PLAIN").is_err());
    }
}
