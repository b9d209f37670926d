//! How a setting's value is read: one small pure parser per kind of value
//! (`&str` in, the value or a refusal out), and [`setting`], which puts
//! one in clap's hands with the two rules every setting follows.
//!
//! - A blank value counts as unset: the parser sees the setting's default
//!   instead (or `""` for a setting with none, which its parser reads as
//!   "unset" or refuses).
//! - A refusal is one line naming the variable, whichever way the value
//!   came: `REISSUE_ACCESS_TTL: expected a whole number of seconds, got
//!   `soon``. [`refusal`] tells it from clap's usage errors.
//!
//! So each default is written once, in its `#[arg(default_value = ...)]`,
//! and each refusal once, in its parser. The parsers never read a file or
//! the environment, and never echo a value that may be secret.

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Arg, Command};

/// A value parser for clap that applies the rules above around `parse`.
///
/// ```
/// use std::time::Duration;
/// use clap::Parser;
/// use reissue_admin::value::{parse_seconds, setting};
///
/// #[derive(Parser)]
/// struct App {
///     #[arg(long, env = "APP_TTL", default_value = "300", value_parser = setting(parse_seconds))]
///     ttl: Duration,
/// }
///
/// let app = App::try_parse_from(["app", "--ttl", " "]).unwrap();
/// assert_eq!(app.ttl, Duration::from_secs(300), "blank: the default");
/// let refused = App::try_parse_from(["app", "--ttl", "soon"]).err().unwrap();
/// assert_eq!(
///     reissue_admin::value::refusal(&refused).as_deref(),
///     Some("APP_TTL: expected a whole number of seconds, got `soon`")
/// );
/// ```
pub fn setting<T>(parse: fn(&str) -> Result<T, String>) -> Setting<T> {
    Setting(parse)
}

/// What [`setting`] makes.
#[derive(Clone, Copy)]
pub struct Setting<T>(fn(&str) -> Result<T, String>);

impl<T> std::fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setting(..)")
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(
        &self,
        _cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg
            .and_then(Arg::get_env)
            .and_then(OsStr::to_str)
            .map(str::to_owned)
            .or_else(|| arg.and_then(Arg::get_long).map(|l| format!("--{l}")))
            .unwrap_or_else(|| "a setting".to_owned());
        let refuse =
            |why: String| clap::Error::raw(ErrorKind::ValueValidation, format!("{name}: {why}\n"));
        let text = value
            .to_str()
            .ok_or_else(|| refuse("is not UTF-8".into()))?
            .trim();
        let text = if text.is_empty() {
            arg.and_then(|a| a.get_default_values().first())
                .and_then(|d| d.to_str())
                .unwrap_or("")
        } else {
            text
        };
        (self.0)(text).map_err(refuse)
    }
}

/// A setting's refusal as its one line (`VARIABLE: why`); `None` for
/// clap's own errors (`--help`, an unknown flag), which clap reports itself.
pub fn refusal(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    Some(line.strip_prefix("error: ").unwrap_or(line).to_owned())
}

/// A whole number of seconds.
pub fn parse_seconds(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected a whole number of seconds, got `{v}`"))
}

/// Text as given (trimmed by [`setting`]).
pub fn parse_text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

/// Text that may be unset: `None` when blank.
pub fn parse_optional_text(v: &str) -> Result<Option<String>, String> {
    Ok(Some(v).filter(|v| !v.is_empty()).map(str::to_owned))
}
