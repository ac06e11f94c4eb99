//! `hoop admin`: hoop's administration commands, in hoop's shapes, so a
//! hoop user's scripts keep working:
//!
//! ```text
//! hoop admin create conn NAME -a AGENT [-t TYPE[/SUBTYPE]] [-e KEY=VAL ...]
//!     [--access-modes exec,connect,runbooks] [--reviewers G,..] [--min-review-approvals N]
//!     [--redact-types T,..]
//!     [--guardrail-rules ID,..] [--tags k=v,..] [--overwrite] [-- COMMAND ARGS..]
//! hoop admin create agent NAME          (prints the agent's key)
//! hoop admin create user EMAIL [--name N] [--groups G,..] [--disable] [--overwrite]
//! hoop admin get conn|agents|plugins|sessions|users|guardrails [NAME] [-o json|yaml]
//! hoop admin delete conn|agent|user NAME
//! ```
//!
//! A `-e` value is raw, `base64://...` or `file://PATH` (relative to the
//! working directory, or `file:///absolute`), as in hoop.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use hyper::Method;
use serde_json::{Map, Value, json};

use crate::api::Api;
use crate::output::{self, Format, Table, field};

/// `hoop admin ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a connection, an agent or a user.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Show connections, agents, plugins, sessions, users or guardrails:
    /// all of a kind, or one by name (`get conn pg` or `get conn/pg`).
    Get(GetArgs),
    /// Delete a connection, an agent or a user by name.
    Delete(DeleteArgs),
}

/// `hoop admin create ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CreateCommand {
    /// Create a connection (or, with --overwrite, replace it).
    #[command(visible_alias = "conn", alias = "connections")]
    Connection(CreateConnection),
    /// Register an agent and print its key (HOOP_KEY for hoop-agent).
    #[command(alias = "agents")]
    Agent(CreateAgent),
    /// Create a user (or, with --overwrite, replace it).
    #[command(alias = "users")]
    User(CreateUser),
}

/// `hoop admin create conn`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    hoop admin create conn pg -a default -t database/postgres -e HOST=127.0.0.1 -e PORT=5432 -e USER=postgres\n  \
    hoop admin create conn tcpsvc -a default -t application/tcp -e HOST=127.0.0.1 -e PORT=3000\n  \
    hoop admin create conn hello -a default -- bash -c 'echo hello hoop'")]
pub(crate) struct CreateConnection {
    /// The connection's name.
    name: String,
    /// The agent that serves it, by name or id.
    #[arg(short, long)]
    agent: String,
    /// custom (runs the command after --), application/{tcp,httpproxy,ssh}
    /// or database/{postgres,mysql,mongodb,mssql,oracledb}.
    #[arg(short = 't', long = "type", default_value = "custom")]
    kind: String,
    /// A credential as KEY=VAL (repeat it); VAL is raw, base64://... or
    /// file://PATH. KEY may be prefixed envvar: (the default) or filesystem:.
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    /// Access modes to enable: exec, connect, runbooks.
    #[arg(long, value_delimiter = ',', default_value = "connect,exec,runbooks")]
    access_modes: Vec<String>,
    /// Groups whose approval a session needs (enables the review plugin).
    #[arg(long, value_delimiter = ',')]
    reviewers: Vec<String>,
    /// How many reviewer groups must approve, when fewer than all.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    min_review_approvals: Option<u16>,
    /// Entity types to mask in results (enables the dlp plugin).
    #[arg(long, value_delimiter = ',')]
    redact_types: Vec<String>,
    /// Ids of guardrail rule sets to apply.
    #[arg(long, value_delimiter = ',')]
    guardrail_rules: Vec<String>,
    /// Tags, as key=value.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Replace the connection if one of this name exists.
    #[arg(long)]
    overwrite: bool,
    /// Print the API's answer as json or yaml.
    #[arg(short, long, value_enum)]
    output: Option<Format>,
    /// The command a custom connection runs, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `hoop admin create agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateAgent {
    /// The agent's name.
    name: String,
    /// standard (a separate hoop-agent) or embedded.
    #[arg(long, default_value = "standard")]
    mode: String,
    /// Print the API's answer (with the key) as json or yaml.
    #[arg(short, long, value_enum)]
    output: Option<Format>,
}

/// `hoop admin create user`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateUser {
    /// The user's e-mail address.
    email: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Groups the user belongs to (admin makes an administrator).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Create the user inactive.
    #[arg(long)]
    disable: bool,
    /// Replace the user if one with this e-mail exists.
    #[arg(long)]
    overwrite: bool,
    /// Print the API's answer as json or yaml.
    #[arg(short, long, value_enum)]
    output: Option<Format>,
}

/// `hoop admin get`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  hoop admin get conn\n  hoop admin get conn pg -o json\n  \
    hoop admin get agents\n  hoop admin get sessions -o yaml"
)]
pub(crate) struct GetArgs {
    /// conn (connection, connections), agents, plugins, sessions, users or
    /// guardrails; KIND/NAME names one.
    resource: String,
    /// One by name (or id).
    name: Option<String>,
    /// table, json or yaml.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// `hoop admin delete`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// conn (connection, connections), agent or user; KIND/NAME names one.
    resource: String,
    /// Its name (or id).
    name: Option<String>,
}

/// The kinds of things `get` and `delete` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Connections,
    Agents,
    Plugins,
    Sessions,
    Users,
    Guardrails,
}

impl Resource {
    fn parse(word: &str) -> anyhow::Result<Self> {
        Ok(match word {
            "conn" | "connection" | "connections" => Self::Connections,
            "agent" | "agents" => Self::Agents,
            "plugin" | "plugins" => Self::Plugins,
            "session" | "sessions" => Self::Sessions,
            "user" | "users" => Self::Users,
            "guardrail" | "guardrails" => Self::Guardrails,
            other => bail!(
                "unknown resource {other:?}: use conn, agents, plugins, sessions, users or guardrails"
            ),
        })
    }

    fn path(self) -> &'static str {
        match self {
            Self::Connections => "/api/connections",
            Self::Agents => "/api/agents",
            Self::Plugins => "/api/plugins",
            Self::Sessions => "/api/sessions",
            Self::Users => "/api/users",
            Self::Guardrails => "/api/guardrails",
        }
    }

    /// The singular noun, for messages.
    fn noun(self) -> &'static str {
        match self {
            Self::Connections => "connection",
            Self::Agents => "agent",
            Self::Plugins => "plugin",
            Self::Sessions => "session",
            Self::Users => "user",
            Self::Guardrails => "guardrail rule set",
        }
    }
}

/// `KIND NAME` or `KIND/NAME`.
fn resource_and_name(
    resource: &str,
    name: Option<String>,
) -> anyhow::Result<(Resource, Option<String>)> {
    match resource.split_once('/') {
        Some((kind, one)) if name.is_none() && !one.is_empty() => {
            Ok((Resource::parse(kind)?, Some(one.to_owned())))
        }
        Some(_) => bail!("name one {resource}: as KIND NAME or KIND/NAME, not both"),
        None => Ok((Resource::parse(resource)?, name)),
    }
}

/// `name` as one path segment: anything but letters, digits and `-._~@`
/// percent-encoded (and the dots of `.` and `..`), so a name cannot reach
/// another route.
pub(crate) fn segment(name: &str) -> String {
    if name == "." || name == ".." {
        return name.replace('.', "%2E");
    }
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(crate) async fn run(command: AdminCommand) -> anyhow::Result<()> {
    let api = Api::from_login()?;
    match command {
        AdminCommand::Create(CreateCommand::Connection(args)) => {
            let name = args.name.clone();
            create_connection(&api, args)
                .await
                .with_context(|| format!("creating connection {name}"))
        }
        AdminCommand::Create(CreateCommand::Agent(args)) => {
            let name = args.name.clone();
            create_agent(&api, args)
                .await
                .with_context(|| format!("creating agent {name}"))
        }
        AdminCommand::Create(CreateCommand::User(args)) => {
            let email = args.email.clone();
            create_user(&api, args)
                .await
                .with_context(|| format!("creating user {email}"))
        }
        AdminCommand::Get(args) => {
            let (resource, name) = resource_and_name(&args.resource, args.name)?;
            let what = match &name {
                Some(name) => format!("getting {} {name}", resource.noun()),
                None => format!("listing {}s", resource.noun()),
            };
            get(&api, resource, name.as_deref(), args.output)
                .await
                .context(what)
        }
        AdminCommand::Delete(args) => {
            let (resource, name) = resource_and_name(&args.resource, args.name)?;
            let Some(name) = name else {
                bail!("deleting a {}: name it", resource.noun());
            };
            delete(&api, resource, &name)
                .await
                .with_context(|| format!("deleting {} {name}", resource.noun()))
        }
    }
}

/// A credential's value: raw, `base64://...` or `file://PATH`.
fn env_value(value: &str) -> anyhow::Result<String> {
    if let Some(encoded) = value.strip_prefix("base64://") {
        let bytes = STANDARD
            .decode(encoded.trim())
            .context("the base64:// value is not valid base64")?;
        return String::from_utf8(bytes).context("the base64:// value is not UTF-8 text");
    }
    if let Some(path) = value.strip_prefix("file://") {
        return std::fs::read_to_string(Path::new(path)).with_context(|| format!("reading {path}"));
    }
    Ok(value.to_owned())
}

/// `-e` pairs as the API's `secret`: `envvar:KEY` (or `filesystem:KEY`)
/// to the base64 of the value.
fn secret(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut secret = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("-e {pair:?} is not KEY=VAL");
        };
        let key = match key.split_once(':') {
            Some((kind @ ("envvar" | "filesystem"), name)) => format!("{kind}:{name}"),
            Some((kind, _)) => bail!("-e {key}: the kind is envvar: or filesystem:, not {kind}:"),
            None => format!("envvar:{key}"),
        };
        let value = env_value(value).with_context(|| format!("-e {key}"))?;
        secret.insert(key, Value::String(STANDARD.encode(value)));
    }
    Ok(secret)
}

fn connection_body(args: &CreateConnection) -> anyhow::Result<Value> {
    let (kind, subtype) = match args.kind.split_once('/') {
        Some((kind, subtype)) => (kind, Some(subtype)),
        None => (args.kind.as_str(), None),
    };
    if kind == "custom" && args.command.is_empty() {
        bail!(
            "a custom connection runs a command: give it after --, e.g. \
             hoop admin create conn {} -a {} -- bash -c 'echo hello'; for a database use \
             -t database/postgres or -t database/mysql",
            args.name,
            args.agent
        );
    }
    for mode in &args.access_modes {
        if !matches!(mode.as_str(), "exec" | "connect" | "runbooks") {
            bail!("--access-modes: {mode:?} is not exec, connect or runbooks");
        }
    }
    let enabled = |mode: &str| {
        if args.access_modes.iter().any(|m| m == mode) {
            "enabled"
        } else {
            "disabled"
        }
    };
    let mut body = json!({
        "name": args.name,
        "type": kind,
        "agent_id": args.agent,
        "secret": secret(&args.env)?,
        "command": args.command,
        "access_mode_exec": enabled("exec"),
        "access_mode_connect": enabled("connect"),
        "access_mode_runbooks": enabled("runbooks"),
        "reviewers": args.reviewers,
        "min_review_approvals": args.min_review_approvals,
        "redact_enabled": !args.redact_types.is_empty(),
        "redact_types": args.redact_types,
        "guardrail_rules": args.guardrail_rules,
        "tags": args.tags,
    });
    if let Some(subtype) = subtype {
        body["subtype"] = json!(subtype);
    }
    Ok(body)
}

async fn create_connection(api: &Api, args: CreateConnection) -> anyhow::Result<()> {
    let body = connection_body(&args)?;
    let path = format!("/api/connections/{}", segment(&args.name));
    let exists = args.overwrite && api.find(&path).await?.is_some();
    let (created, verb) = if exists {
        (api.call(Method::PUT, &path, Some(&body)).await?, "updated")
    } else {
        (
            api.call(Method::POST, "/api/connections", Some(&body))
                .await?,
            "created",
        )
    };
    match args.output {
        Some(format) => output::print(format, &created, || Table::new(&[])),
        None => println!(
            "connection {} {verb} ({})",
            args.name,
            field(&created, "status")
        ),
    }
    Ok(())
}

async fn create_agent(api: &Api, args: CreateAgent) -> anyhow::Result<()> {
    let body = json!({"name": args.name, "mode": args.mode});
    let created = api.call(Method::POST, "/api/agents", Some(&body)).await?;
    match args.output {
        Some(format) => output::print(format, &created, || Table::new(&[])),
        None => println!("{}", field(&created, "token")),
    }
    Ok(())
}

async fn create_user(api: &Api, args: CreateUser) -> anyhow::Result<()> {
    let body = json!({
        "email": args.email,
        "name": args.name.clone().unwrap_or_default(),
        "groups": args.groups,
        "status": if args.disable { "inactive" } else { "active" },
    });
    let path = format!("/api/users/{}", segment(&args.email));
    let exists = args.overwrite && api.find(&path).await?.is_some();
    let (created, verb) = if exists {
        (api.call(Method::PUT, &path, Some(&body)).await?, "updated")
    } else {
        (
            api.call(Method::POST, "/api/users", Some(&body)).await?,
            "created",
        )
    };
    match args.output {
        Some(format) => output::print(format, &created, || Table::new(&[])),
        None => println!("user {} {verb}", args.email),
    }
    Ok(())
}

/// Lists (or shows one of) a resource and prints it.
pub(crate) async fn get(
    api: &Api,
    resource: Resource,
    name: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let value = match name {
        Some(name) => {
            let path = format!("{}/{}", resource.path(), segment(name));
            api.find(&path)
                .await?
                .with_context(|| format!("no {} named {name}", resource.noun()))?
        }
        None => api.get(resource.path()).await?,
    };
    let items = match &value {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let table = match (resource, format) {
        (_, Format::Json | Format::Yaml) => Table::new(&[]),
        (Resource::Connections, Format::Table) => connections_table(api, &items).await,
        (Resource::Agents, Format::Table) => agents_table(&items),
        (Resource::Plugins, Format::Table) => plugins_table(&items),
        (Resource::Sessions, Format::Table) => sessions_table(&items),
        (Resource::Users, Format::Table) => users_table(&items),
        (Resource::Guardrails, Format::Table) => guardrails_table(&items),
    };
    output::print(format, &value, || table);
    Ok(())
}

async fn delete(api: &Api, resource: Resource, name: &str) -> anyhow::Result<()> {
    if !matches!(
        resource,
        Resource::Connections | Resource::Agents | Resource::Users
    ) {
        bail!("only connections, agents and users can be deleted here");
    }
    let path = format!("{}/{}", resource.path(), segment(name));
    api.call(Method::DELETE, &path, None).await?;
    println!("{} {name} deleted", resource.noun());
    Ok(())
}

/// Connections: name, type/subtype, agent by name, status, access modes
/// and enabled plugins. Agents and plugins are looked up once; a caller
/// who may not list them sees `-` there.
pub(crate) async fn connections_table(api: &Api, connections: &[Value]) -> Table {
    let agents: HashMap<String, String> = match api.get("/api/agents").await {
        Ok(Value::Array(agents)) => agents
            .iter()
            .map(|a| (field(a, "id"), field(a, "name")))
            .collect(),
        _ => HashMap::new(),
    };
    let mut plugins: HashMap<String, BTreeSet<String>> = HashMap::new();
    if let Ok(Value::Array(list)) = api.get("/api/plugins").await {
        for plugin in &list {
            for connection in plugin["connections"].as_array().into_iter().flatten() {
                plugins
                    .entry(field(connection, "id"))
                    .or_default()
                    .insert(field(plugin, "name"));
            }
        }
    }
    let mut table = Table::new(&["NAME", "TYPE", "AGENT", "STATUS", "ACCESS", "PLUGINS"]);
    for connection in connections {
        let kind = match connection["subtype"].as_str().filter(|s| !s.is_empty()) {
            Some(subtype) => format!("{}/{subtype}", field(connection, "type")),
            None => field(connection, "type"),
        };
        let agent_id = field(connection, "agent_id");
        let agent = agents.get(&agent_id).cloned().unwrap_or(agent_id);
        let access: Vec<&str> = ["exec", "connect", "runbooks"]
            .into_iter()
            .filter(|mode| connection[format!("access_mode_{mode}")] == "enabled")
            .collect();
        let enabled = plugins
            .get(&field(connection, "id"))
            .map(|names| names.iter().cloned().collect::<Vec<_>>().join(","));
        table.row(vec![
            field(connection, "name"),
            kind,
            agent,
            field(connection, "status"),
            if access.is_empty() {
                "-".into()
            } else {
                access.join(",")
            },
            enabled.unwrap_or_else(|| "-".into()),
        ]);
    }
    table
}

fn agents_table(agents: &[Value]) -> Table {
    let mut table = Table::new(&[
        "NAME", "STATUS", "MODE", "VERSION", "HOSTNAME", "PLATFORM", "ID",
    ]);
    for agent in agents {
        let status = match agent["status"].as_str() {
            Some("CONNECTED") => "online",
            Some("DISCONNECTED") => "offline",
            _ => "-",
        };
        table.row(vec![
            field(agent, "name"),
            status.into(),
            field(agent, "mode"),
            field(agent, "version"),
            field(agent, "hostname"),
            field(agent, "platform"),
            field(agent, "id"),
        ]);
    }
    table
}

fn plugins_table(plugins: &[Value]) -> Table {
    let mut table = Table::new(&["NAME", "CONNECTIONS", "CONFIG"]);
    for plugin in plugins {
        let connections: Vec<String> = plugin["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| field(c, "name"))
            .collect();
        let config = match &plugin["config"] {
            Value::Null => "-".into(),
            config => {
                let text = config.to_string();
                if text.chars().count() > 40 {
                    format!("{}...", text.chars().take(37).collect::<String>())
                } else {
                    text
                }
            }
        };
        table.row(vec![
            field(plugin, "name"),
            if connections.is_empty() {
                "-".into()
            } else {
                connections.join(",")
            },
            config,
        ]);
    }
    table
}

/// Sessions: id, user, connection, mode, status, start (local time) and
/// duration (so far, for an open one).
pub(crate) fn sessions_table(sessions: &[Value]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "USER",
        "CONNECTION",
        "MODE",
        "STATUS",
        "STARTED (local)",
        "DURATION",
    ]);
    for session in sessions {
        let started = session["started_at"].as_i64();
        let ended = session["ended_at"].as_i64();
        let duration = match (started, ended) {
            (Some(start), Some(end)) => output::duration(end - start),
            (Some(start), None) => format!("{} (open)", output::duration(output::now_ms() - start)),
            _ => "-".into(),
        };
        table.row(vec![
            field(session, "id"),
            field(session, "user"),
            field(session, "connection"),
            field(session, "access_mode"),
            field(session, "status"),
            started.map_or_else(|| "-".into(), output::local_time),
            duration,
        ]);
    }
    table
}

fn users_table(users: &[Value]) -> Table {
    let mut table = Table::new(&["EMAIL", "NAME", "STATUS", "ROLE", "GROUPS", "ID"]);
    for user in users {
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        table.row(vec![
            field(user, "email"),
            field(user, "name"),
            field(user, "status"),
            field(user, "role"),
            if groups.is_empty() {
                "-".into()
            } else {
                groups.join(",")
            },
            field(user, "id"),
        ]);
    }
    table
}

fn guardrails_table(guardrails: &[Value]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "INPUT RULES",
        "OUTPUT RULES",
        "UPDATED (local)",
        "DESCRIPTION",
    ]);
    let count = |value: &Value| value["rules"].as_array().map_or(0, Vec::len).to_string();
    for guardrail in guardrails {
        table.row(vec![
            field(guardrail, "id"),
            field(guardrail, "name"),
            count(&guardrail["input"]),
            count(&guardrail["output"]),
            guardrail["updated_at"]
                .as_i64()
                .map_or_else(|| "-".into(), output::local_time),
            field(guardrail, "description"),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_raw_base64_or_files() {
        let dir = std::env::temp_dir().join(format!("hoop-admin-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pass");
        std::fs::write(&file, "from-a-file").unwrap();
        let pairs = [
            "HOST=127.0.0.1".to_owned(),
            "envvar:USER=base64://cG9zdGdyZXM=".to_owned(),
            format!("PASS=file://{}", file.display()),
            "filesystem:CA=a=b".to_owned(),
            "EMPTY=".to_owned(),
        ];
        let parsed = secret(&pairs).unwrap();
        let decoded = |key: &str| {
            String::from_utf8(STANDARD.decode(parsed[key].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(decoded("envvar:HOST"), "127.0.0.1");
        assert_eq!(decoded("envvar:USER"), "postgres");
        assert_eq!(decoded("envvar:PASS"), "from-a-file");
        assert_eq!(decoded("filesystem:CA"), "a=b");
        assert_eq!(decoded("envvar:EMPTY"), "");
        for bad in [
            "NOEQUALS",
            "PASS=base64://%%%",
            "other:X=1",
            "PASS=file:///no/such/file",
        ] {
            assert!(secret(&[bad.to_owned()]).is_err(), "{bad}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_stay_one_path_segment() {
        assert_eq!(segment("pg-1.prod_x"), "pg-1.prod_x");
        assert_eq!(segment("a@b.example"), "a@b.example");
        assert_eq!(segment("../agents?x=1#"), "..%2Fagents%3Fx%3D1%23");
        assert_eq!(segment(".."), "%2E%2E");
    }

    #[test]
    fn resources_take_hoops_names_and_kind_slash_name() {
        assert_eq!(
            resource_and_name("conn/pg", None).unwrap(),
            (Resource::Connections, Some("pg".into()))
        );
        assert_eq!(
            resource_and_name("connections", Some("pg".into())).unwrap(),
            (Resource::Connections, Some("pg".into()))
        );
        assert_eq!(
            resource_and_name("agents", None).unwrap().0,
            Resource::Agents
        );
        assert!(resource_and_name("conn/pg", Some("pg".into())).is_err());
        assert!(resource_and_name("spreadsheets", None).is_err());
    }
}
