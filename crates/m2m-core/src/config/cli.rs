//! Reading clap settings from the environment, one way for binaries, library users and tests:
//! every variable a setting names is looked up through an [`Env`] (trimmed; unset or blank: the
//! setting's default) and, unless the command line gives that setting, handed to clap as its
//! flag, so both are parsed and checked by the same code. A secret read from elsewhere (a
//! `<NAME>_FILE` variant, say) is added in [`Env::get`] alone.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Command, CommandFactory, FromArgMatches, Parser};

use super::{ConfigError, Env};

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
        let shown = C::command();
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        self.parse_with(&shown, &args).map_err(|e| {
            setting_error(&shown, &e).unwrap_or_else(|| {
                ConfigError::new(
                    shown.get_name(),
                    e.kind().as_str().unwrap_or("invalid settings"),
                )
            })
        })
    }

    fn parse_with<C: FromArgMatches>(
        &self,
        shown: &Command,
        args: &[OsString],
    ) -> Result<C, clap::Error> {
        // The command line alone first, to know which settings it gives.
        let mut cmd = shown.clone().mut_args(|a| a.env(None::<&'static str>));
        let given = cmd.try_get_matches_from_mut(args)?;
        let mut argv: Vec<OsString> = args.iter().take(1).cloned().collect();
        for a in shown.get_arguments() {
            let from_line =
                given.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
            let value = a.get_env().and_then(|var| self.get(&var.to_string_lossy()));
            if let (false, Some(long), Some(value)) = (from_line, a.get_long(), value) {
                argv.push(format!("--{long}={value}").into());
            }
        }
        argv.extend(args.iter().skip(1).cloned());
        let matches = cmd.try_get_matches_from_mut(argv)?;
        C::from_arg_matches(&matches)
    }
}

/// A service's settings from its command line and the process environment (a blank variable is
/// unset). A malformed setting is an error naming its variable; `--help`, `--version` and
/// command-line mistakes print what clap prints and exit, as `C::parse()` would.
pub fn parse_args<C: Parser>() -> Result<C, ConfigError> {
    let shown = C::command();
    let args: Vec<OsString> = std::env::args_os().collect();
    Env::process()
        .parse_with(&shown, &args)
        .map_err(|e| match setting_error(&shown, &e) {
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
