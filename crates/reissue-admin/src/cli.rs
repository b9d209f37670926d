//! The command line: what each subcommand does, and its two renderings
//! (lines for people, `--json` for scripts).

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use reissue_core::SessionId;
use reissue_core::store::{Deployment, Eviction, RedisStore, SessionInfo, SessionStore};
use reissue_diesel::{User, UserError, UserStore};
use serde_json::{Value, json};

use crate::{Error, StoreArgs};

/// Administers reissue's sessions and users from outside the apps: list and
/// end a user's sessions, create users, set roles, check the store.
///
/// It reads the apps' settings (each option also from the environment
/// variable shown), so run it with the apps' environment. A user is given by
/// id or email. Exit status: 0 done, 1 failed (one line on stderr saying
/// why), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "reissue-admin", version)]
pub struct Cli {
    #[command(flatten)]
    store: StoreArgs,

    /// Print JSON (one document on stdout) instead of lines for people
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A user's sessions (needs REDIS_URL)
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The user database
    #[command(subcommand)]
    Users(UsersCommand),
    /// Whether Redis and the user database answer, Redis's eviction policy,
    /// each primary's online replicas (which confirm revocations), and how
    /// many keys the store holds under its prefix
    Health,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Lists a user's live sessions, oldest first
    List {
        /// The user's id or email
        user: String,
    },
    /// Ends one session: its refresh token stops working, and apps in
    /// instant mode refuse its access tokens at once
    End {
        /// The user's id or email
        user: String,
        /// The session id (from `sessions list`)
        // base64url: an id may start with `-`.
        #[arg(allow_hyphen_values = true)]
        sid: String,
    },
    /// Ends every session of a user (a forced logout)
    EndAll {
        /// The user's id or email
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Creates a user, vouched for (see `vouch`). The password is read from
    /// standard input (one line), or asked for without echo on a terminal;
    /// never from the command line
    Create {
        /// The new user's email
        email: String,
        /// A role to give the user (repeatable)
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Vouches for an account that signed itself up: its owner is who the
    /// email says. Only vouched accounts get what the apps grant by email
    /// (`REISSUE_ADMIN_EMAILS`), from their next login
    Vouch {
        /// The user's id or email
        user: String,
    },
    /// Takes the vouch away; sessions keep the roles they logged in with
    Unvouch {
        /// The user's id or email
        user: String,
    },
    /// Sets a user's password, read as `create` reads it, and ends every
    /// session of the user (in instant mode their access tokens are refused
    /// at once on every instance)
    SetPassword {
        /// The user's id or email
        user: String,
    },
    /// Replaces a user's roles (none: no roles) and ends every session of
    /// the user: tokens carry the roles they were minted with, so no access
    /// token with the old roles is accepted after this (in instant mode at
    /// once; in stateless mode until the access lifetime has passed)
    SetRoles {
        /// The user's id or email
        user: String,
        /// The roles
        roles: Vec<String>,
    },
}

impl Cli {
    /// Runs the command, writing its report to `out`. `Ok(false)`: the
    /// report was written but says something is wrong (`health`).
    pub async fn run(self, out: &mut impl Write) -> Result<bool, Error> {
        let json = self.json;
        let (report, healthy) = match self.command {
            Command::Sessions(command) => (sessions(&self.store, command).await?, true),
            Command::Users(command) => (users(&self.store, command).await?, true),
            Command::Health => health(&self.store).await,
        };
        let written = if json {
            writeln!(out, "{}", report.json)
        } else {
            write!(out, "{}", report.text)
        };
        written
            .and_then(|()| out.flush())
            .map_err(|e| Error::setting("stdout", e))?;
        Ok(healthy)
    }
}

/// What a command found, in both renderings.
struct Report {
    text: String,
    json: Value,
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "email": user.email,
        "roles": user.roles,
        "vouched": user.vouched_at.is_some(),
    })
}

fn describe(user: &User) -> String {
    format!("user {} ({})", user.id, user.email)
}

/// The user named by id (digits) or email.
async fn find_user(users: &UserStore, who: &str) -> Result<User, Error> {
    let who = who.trim();
    let found = match who.parse::<i64>() {
        Ok(id) => users.find_by_id(id).await,
        Err(_) => users.find_by_email(who).await,
    };
    found
        .map_err(Error::Users)?
        .ok_or_else(|| Error::UnknownUser(who.to_owned()))
}

async fn shared_store(args: &StoreArgs) -> Result<RedisStore, Error> {
    args.connect_redis().await?.ok_or(Error::NoSharedStore)
}

async fn sessions(args: &StoreArgs, command: SessionsCommand) -> Result<Report, Error> {
    // Both connections first: a store that is missing is a setting to fix,
    // whatever the user.
    let store = shared_store(args).await?;
    let users = args.connect_users().await?;
    match command {
        SessionsCommand::List { user } => {
            let user = find_user(&users, &user).await?;
            let list = store
                .list(&user.id.to_string())
                .await
                .map_err(Error::Store)?;
            Ok(Report {
                text: session_table(&user, &list),
                json: json!({
                    "user": user_json(&user),
                    "sessions": list.iter().map(session_json).collect::<Vec<_>>(),
                }),
            })
        }
        SessionsCommand::End { user, sid } => {
            let user = find_user(&users, &user).await?;
            let unknown = || Error::UnknownSession {
                user: user.id.to_string(),
                sid: sid.clone(),
            };
            let session = SessionId::parse(sid.trim()).ok_or_else(unknown)?;
            let ended = store
                .revoke(&user.id.to_string(), &session)
                .await
                .map_err(Error::Store)?;
            if !ended {
                return Err(unknown());
            }
            Ok(Report {
                text: format!(
                    "ended session {} of {}\n",
                    session.as_str(),
                    describe(&user)
                ),
                json: json!({ "user": user_json(&user), "ended": [session.as_str()] }),
            })
        }
        SessionsCommand::EndAll { user } => {
            let user = find_user(&users, &user).await?;
            let ended = store
                .revoke_all(&user.id.to_string())
                .await
                .map_err(Error::Store)?;
            let mut text = format!(
                "ended {} session{} of {}\n",
                ended.len(),
                if ended.len() == 1 { "" } else { "s" },
                describe(&user)
            );
            for sid in &ended {
                text.push_str(&format!("  {}\n", sid.as_str()));
            }
            Ok(Report {
                text,
                json: json!({
                    "user": user_json(&user),
                    "ended": ended.iter().map(SessionId::as_str).collect::<Vec<_>>(),
                }),
            })
        }
    }
}

fn session_json(s: &SessionInfo) -> Value {
    json!({
        "sid": s.sid.as_str(),
        "created_at": s.created_at,
        "last_used_at": s.last_used_at,
        "ip": s.client.ip.map(|ip| ip.to_string()),
        "country": s.client.country.map(|c| c.to_string()),
        "user_agent": s.client.user_agent,
    })
}

fn session_table(user: &User, list: &[SessionInfo]) -> String {
    let mut text = format!(
        "{} live session{} of {}\n",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        describe(user)
    );
    if list.is_empty() {
        return text;
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|s| {
            [
                s.sid.as_str().to_owned(),
                utc(s.created_at),
                utc(s.last_used_at),
                s.client.ip.map_or("-".into(), |ip| ip.to_string()),
                s.client.country.map_or("-".into(), |c| c.to_string()),
                s.client.user_agent.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = ["SID", "CREATED", "LAST USED", "IP", "COUNTRY", "USER AGENT"];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(&head);
    for row in &rows {
        // A user agent is client text: keep it on its line.
        let ua: String = row[5]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        line(&[&row[0], &row[1], &row[2], &row[3], &row[4], &ua]);
    }
    text
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ` (UTC).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn users(args: &StoreArgs, command: UsersCommand) -> Result<Report, Error> {
    let vouch = matches!(command, UsersCommand::Vouch { .. });
    match command {
        UsersCommand::Create { email, roles } => {
            // Before asking for a password: a typo in the setting should not
            // cost the operator a prompt.
            let users = args.connect_users().await?;
            let password = read_password()?;
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let user = users
                .create_user(&email, &password, &roles)
                .await
                .map_err(refused)?;
            // An operator typed the address: the account is theirs to vouch for.
            users.set_vouched(user.id, true).await.map_err(refused)?;
            let user = find_user(&users, &user.id.to_string()).await?;
            Ok(Report {
                text: format!(
                    "created {} with roles [{}]\n",
                    describe(&user),
                    user.roles.join(", ")
                ),
                json: user_json(&user),
            })
        }
        UsersCommand::Vouch { user } | UsersCommand::Unvouch { user } => {
            let users = args.connect_users().await?;
            let user = find_user(&users, &user).await?;
            users.set_vouched(user.id, vouch).await.map_err(refused)?;
            let user = find_user(&users, &user.id.to_string()).await?;
            Ok(Report {
                text: if vouch {
                    format!("vouched for {}\n", describe(&user))
                } else {
                    format!("{} is no longer vouched for\n", describe(&user))
                },
                json: user_json(&user),
            })
        }
        UsersCommand::SetPassword { user } => {
            let store = shared_store(args).await?;
            let users = args.connect_users().await?;
            let user = find_user(&users, &user).await?;
            let password = read_password()?;
            users
                .set_password(user.id, &password)
                .await
                .map_err(refused)?;
            let ended = end_sessions(Some(&store), &user).await?;
            Ok(Report {
                text: format!("set the password of {}; {ended}\n", describe(&user)),
                json: user_json(&user),
            })
        }
        UsersCommand::SetRoles { user, roles } => {
            let store = args.connect_redis().await?;
            let users = args.connect_users().await?;
            let user = find_user(&users, &user).await?;
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            users.set_roles(user.id, &roles).await.map_err(refused)?;
            let user = find_user(&users, &user.id.to_string()).await?;
            let ended = end_sessions(store.as_ref(), &user).await?;
            Ok(Report {
                text: format!(
                    "{} now has roles [{}]; {ended}\n",
                    describe(&user),
                    user.roles.join(", "),
                ),
                json: user_json(&user),
            })
        }
    }
}

/// Ends every session of a user whose credentials changed, and says how
/// many: tokens carry what they were minted with, so none may outlive it.
async fn end_sessions(store: Option<&RedisStore>, user: &User) -> Result<String, Error> {
    let Some(store) = store else {
        return Ok(
            "REDIS_URL is unset, so the app keeps its sessions in its own memory: \
                   restart it to end them"
                .to_owned(),
        );
    };
    let ended = store
        .revoke_all(&user.id.to_string())
        .await
        .map_err(Error::Store)?;
    Ok(format!(
        "ended {} session{}",
        ended.len(),
        if ended.len() == 1 { "" } else { "s" }
    ))
}

/// A refusal of the user database in its own words; an outage as one.
fn refused(e: UserError) -> Error {
    match e {
        UserError::Unavailable(_) | UserError::Config(_) => Error::Users(e),
        UserError::NotFound => Error::Refused("no such user".into()),
        other => Error::Refused(other.to_string()),
    }
}

/// The password: asked for twice without echo on a terminal, else the first
/// line of standard input (its line ending removed, nothing else).
fn read_password() -> Result<String, Error> {
    let failed = |e: std::io::Error| Error::Password(format!("cannot read it: {e}"));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(failed)?;
        let again = rpassword::prompt_password("Password again: ").map_err(failed)?;
        if first != again {
            return Err(Error::Password("the two entries differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(failed)?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(Error::Password(
            "none on standard input (give it as one line)".into(),
        ));
    }
    Ok(password.to_owned())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Checks both stores; never fails, the report says what is wrong.
async fn health(args: &StoreArgs) -> (Report, bool) {
    let mut text = String::new();
    let mut healthy = true;
    let store_json = match args.redis_url() {
        None => {
            text.push_str(
                "store     memory: REDIS_URL is unset, so each app keeps its sessions in \
                 its own memory, out of this tool's reach\n",
            );
            json!({ "kind": "memory" })
        }
        Some(_) => match redis_health(args).await {
            Ok((lines, value, ok)) => {
                healthy &= ok;
                text.push_str(&lines);
                value
            }
            Err(e) => {
                healthy = false;
                text.push_str(&format!("store     unreachable: {e}\n"));
                json!({ "kind": "redis", "reachable": false, "error": e.to_string() })
            }
        },
    };
    let database_json = match database_health(args).await {
        Ok(latency) => {
            text.push_str(&format!("database  reachable, {} ms\n", millis(latency)));
            json!({ "reachable": true, "latency_ms": millis(latency) })
        }
        Err(e) => {
            healthy = false;
            text.push_str(&format!("database  unreachable: {e}\n"));
            json!({ "reachable": false, "error": e.to_string() })
        }
    };
    text.push_str(if healthy { "ok\n" } else { "NOT OK\n" });
    let report = Report {
        text,
        json: json!({ "ok": healthy, "store": store_json, "database": database_json }),
    };
    (report, healthy)
}

async fn redis_health(args: &StoreArgs) -> Result<(String, Value, bool), Error> {
    let store = shared_store(args).await?;
    let latency = store.ping().await.map_err(Error::Store)?;
    let keys = store.count_keys().await.map_err(Error::Store)?;
    let deployment = match store.deployment() {
        Deployment::Cluster => "cluster",
        Deployment::Sentinel => "sentinel",
        _ => "single",
    };
    let (policy, evicts, note) = match store.eviction() {
        Eviction::Never => ("noeviction".to_owned(), false, ""),
        Eviction::May { policy } => (
            policy.clone(),
            true,
            " (may evict sessions: set maxmemory-policy noeviction)",
        ),
        _ => (
            "unknown".to_owned(),
            false,
            " (CONFIG GET refused: make sure it is noeviction)",
        ),
    };
    let replication = store.replication().await.map_err(Error::Store)?;
    // A failover is what could undo a revocation no replica has: where the
    // deployment promises failovers, every primary needs an online replica.
    let fails_over = !matches!(deployment, "single");
    let unconfirmed: Vec<&str> = replication
        .iter()
        .filter(|r| fails_over && r.replicas == 0)
        .map(|r| r.primary.as_str())
        .collect();
    let mut replicas = String::new();
    for r in &replication {
        replicas.push_str(&format!(
            "replicas  {}: {} online, {} B behind{}\n",
            r.primary,
            r.replicas,
            r.behind_bytes,
            if r.replicas == 0 && fails_over {
                " (revocations here are not confirmed by a replica: a failover could undo them)"
            } else {
                ""
            }
        ));
    }
    let prefix = args.redis_prefix();
    let text = format!(
        "store     redis ({deployment}), reachable, PING {} ms\n\
         eviction  {policy}{note}\n\
         {replicas}\
         keys      {keys} under `{prefix}`\n",
        millis(latency)
    );
    let value = json!({
        "kind": "redis",
        "deployment": deployment,
        "reachable": true,
        "latency_ms": millis(latency),
        "eviction": policy,
        "may_evict": evicts,
        "prefix": prefix,
        "keys": keys,
        "replication": replication
            .iter()
            .map(|r| json!({
                "primary": r.primary,
                "replicas": r.replicas,
                "behind_bytes": r.behind_bytes,
            }))
            .collect::<Vec<_>>(),
        "unconfirmed_primaries": unconfirmed,
    });
    let healthy = !evicts && unconfirmed.is_empty();
    Ok((text, value, healthy))
}

async fn database_health(args: &StoreArgs) -> Result<Duration, Error> {
    let users = args.connect_users().await?;
    let start = Instant::now();
    // Any query answers the question; an id no user has costs least.
    users.find_by_id(0).await.map_err(Error::Users)?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20Z");
    }
}
