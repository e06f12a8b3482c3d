//! Reading clap settings from the environment, one way for binaries, library users and tests:
//! every variable a setting names is looked up through an [`Env`] (trimmed; unset or blank: the
//! setting's default) and, unless the command line gives that setting, handed to clap as its
//! flag, so both are parsed and checked by the same code. A secret setting (one whose value
//! `--help` hides) is read with [`Env::secret`], so it may come from the file `<NAME>_FILE`
//! names instead.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Command, CommandFactory, FromArgMatches, Parser};

use super::{ConfigError, Env, FILE_SUFFIX};

/// Why settings could not be read: clap's verdict on a value, or a secret's file.
enum Failure {
    Clap(clap::Error),
    Setting(ConfigError),
}

impl From<clap::Error> for Failure {
    fn from(e: clap::Error) -> Self {
        Self::Clap(e)
    }
}

impl Env<'_> {
    /// Settings `C` from these variables alone (no command line). An error names the variable.
    pub fn parse<C: CommandFactory + FromArgMatches>(&self) -> Result<C, ConfigError> {
        self.parse_from([C::command().get_name()])
    }

    /// Settings `C` from the command line `args` (the program's name first) and these
    /// variables; a flag wins over its variable. An error names the variable.
    pub fn parse_from<C: CommandFactory + FromArgMatches>(
        &self,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<C, ConfigError> {
        let shown = shown_command(C::command());
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        self.parse_with(&shown, &args).map_err(|e| match e {
            Failure::Setting(e) => e,
            Failure::Clap(e) => setting_error(&shown, &e).unwrap_or_else(|| {
                ConfigError::new(
                    shown.get_name(),
                    e.kind().as_str().unwrap_or("invalid settings"),
                )
            }),
        })
    }

    fn parse_with<C: FromArgMatches>(
        &self,
        shown: &Command,
        args: &[OsString],
    ) -> Result<C, Failure> {
        // The command line alone first, to know which settings it gives.
        let mut cmd = shown.clone().mut_args(|a| a.env(None::<&'static str>));
        let given = cmd.try_get_matches_from_mut(args)?;
        let mut argv: Vec<OsString> = args.iter().take(1).cloned().collect();
        for a in shown.get_arguments() {
            let from_line =
                given.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
            let value = match a.get_env().map(|var| var.to_string_lossy()) {
                None => None,
                Some(var) if a.is_hide_env_values_set() => {
                    self.secret(&var).map_err(Failure::Setting)?
                }
                Some(var) => self.get(&var),
            };
            if let (false, Some(long), Some(value)) = (from_line, a.get_long(), value) {
                argv.push(format!("--{long}={value}").into());
            }
        }
        argv.extend(args.iter().skip(1).cloned());
        let matches = cmd.try_get_matches_from_mut(argv)?;
        Ok(C::from_arg_matches(&matches)?)
    }
}

/// The command as `--help` shows it: each secret setting (one whose value help hides) also
/// names the variable that may name a file holding it.
fn shown_command(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let file_var = match (a.is_hide_env_values_set(), a.get_env()) {
            (true, Some(var)) => format!("{}{FILE_SUFFIX}", var.to_string_lossy()),
            _ => return a,
        };
        let help = a.get_help().map(ToString::to_string).unwrap_or_default();
        let first = help.lines().next().unwrap_or_default().to_owned();
        let note = format!("Or {file_var}: a file holding it (e.g. a Docker secret).");
        let long = a.get_long_help().map(ToString::to_string);
        let a = a.help(format!("{}. {note}", first.trim_end_matches('.')));
        match long {
            Some(long) => a.long_help(format!("{long}\n\n{note}")),
            None => a,
        }
    })
}

/// A service's settings from its command line and the process environment (a blank variable is
/// unset). A malformed setting is an error naming its variable; `--help`, `--version` and
/// command-line mistakes print what clap prints and exit, as `C::parse()` would.
pub fn parse_args<C: Parser>() -> Result<C, ConfigError> {
    let shown = shown_command(C::command());
    let args: Vec<OsString> = std::env::args_os().collect();
    Env::process()
        .parse_with(&shown, &args)
        .map_err(|e| match e {
            Failure::Setting(error) => error,
            Failure::Clap(e) => match setting_error(&shown, &e) {
                Some(error) => error,
                None => {
                    // Help and usage as the command shows them, with each setting's variable.
                    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                        let _ = shown
                            .clone()
                            .try_get_matches_from(&args)
                            .map_err(|e| e.exit());
                    }
                    e.exit()
                }
            },
        })
}

/// The variable of the setting `e` is about, and why its value is refused (never the value).
fn setting_error(cmd: &Command, e: &clap::Error) -> Option<ConfigError> {
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    // Shown as `--long <VALUE>`.
    let long = arg.split([' ', '=']).next()?.strip_prefix("--")?;
    let var = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let reason = match std::error::Error::source(e) {
        Some(cause) => cause.to_string(),
        None => e.kind().as_str().unwrap_or("invalid value").to_owned(),
    };
    Some(ConfigError::new(var, reason))
}

#[cfg(all(test, feature = "verify"))]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Service {
        #[command(flatten)]
        clerk: super::super::ClerkArgs,
        #[command(flatten)]
        verifier: super::super::VerifierArgs,
    }

    #[test]
    fn help_names_the_file_variable_of_each_secret_setting_only() {
        let help = shown_command(Service::command()).render_help().to_string();
        for var in [
            "CLERK_MACHINE_SECRET_KEY_FILE",
            "CLERK_SECRET_KEY_FILE",
            "CLERK_JWT_KEY_FILE",
        ] {
            assert_eq!(help.matches(var).count(), 1, "{var} in:\n{help}");
        }
        assert!(!help.contains("CLERK_API_BASE_URL_FILE"), "{help}");
        assert!(!help.contains("CLERK_ISSUER_FILE"), "{help}");
    }
}
