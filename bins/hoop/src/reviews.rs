//! Reviews (access requests): `hoop reviews list|show|approve|reject|revoke`,
//! and the waiting of `hoop exec` and `hoop connect --duration` on a
//! connection with reviewers.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::segment;
use crate::api::{self, Api};
use crate::output::{self, Format, Table, field};

/// How often a waiting command asks the gateway about its review.
const POLL: Duration = Duration::from_millis(500);

/// `hoop reviews ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReviewsCommand {
    /// List reviews, newest first: your own requests, and those your
    /// groups review.
    List {
        /// Only with this status (PENDING, APPROVED, REJECTED, EXPIRED,
        /// REVOKED, PROCESSING, EXECUTED).
        #[arg(long)]
        status: Option<String>,
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// Only this requester's (e-mail).
        #[arg(long)]
        requester: Option<String>,
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show one review: its script, groups, output and transitions.
    Show {
        /// The review's id.
        id: String,
        /// table, json or yaml.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Approve a review for your reviewer groups.
    Approve {
        /// The review's id.
        id: String,
        /// As an administrator, approve for every group (recorded as forced).
        #[arg(long)]
        force: bool,
    },
    /// Reject a review.
    Reject {
        /// The review's id.
        id: String,
        /// Why, for the requester.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revoke an approved review: connect sessions it allowed are ended.
    Revoke {
        /// The review's id.
        id: String,
    },
}

/// Runs `hoop reviews ...`.
///
/// # Errors
///
/// The gateway's refusal, or a gateway that cannot be reached.
pub(crate) async fn run(command: ReviewsCommand) -> anyhow::Result<()> {
    let api = Api::from_login()?;
    match command {
        ReviewsCommand::List {
            status,
            connection,
            requester,
            output,
        } => {
            let query: Vec<String> = [
                ("status", status),
                ("connection", connection),
                ("requester", requester),
            ]
            .into_iter()
            .filter_map(|(key, value)| {
                value.map(|v| format!("{key}={}", crate::commands::query_value(&v)))
            })
            .collect();
            let path = if query.is_empty() {
                "/api/reviews".to_owned()
            } else {
                format!("/api/reviews?{}", query.join("&"))
            };
            let listed = api.get(&path).await.context("listing reviews")?;
            let items = listed.as_array().cloned().unwrap_or_default();
            output::print(output, &listed, || table(&items));
            Ok(())
        }
        ReviewsCommand::Show { id, output } => {
            let review = api
                .get(&format!("/api/reviews/{}", segment(&id)))
                .await
                .with_context(|| format!("getting review {id}"))?;
            if output != Format::Table {
                output::print(output, &review, || Table::new(&[]));
                return Ok(());
            }
            print!("{}", table(std::slice::from_ref(&review)).render());
            show_details(&review);
            Ok(())
        }
        ReviewsCommand::Approve { id, force } => {
            let body = json!({"status": "APPROVED", "force_review": force});
            decide(&api, &id, &body, "approving").await
        }
        ReviewsCommand::Reject { id, reason } => {
            let mut body = json!({"status": "REJECTED"});
            if let Some(reason) = reason {
                body["rejection_reason"] = json!(reason);
            }
            decide(&api, &id, &body, "rejecting").await
        }
        ReviewsCommand::Revoke { id } => {
            decide(&api, &id, &json!({"status": "REVOKED"}), "revoking").await
        }
    }
}

async fn decide(api: &Api, id: &str, body: &Value, doing: &str) -> anyhow::Result<()> {
    let response = api
        .send(
            Method::PUT,
            &format!("/api/reviews/{}", segment(id)),
            Some(body),
        )
        .await?;
    if !response.status.is_success() {
        // A 403 here is a reviewer rule, not a missing administrator.
        let error = match response.status {
            StatusCode::FORBIDDEN | StatusCode::CONFLICT => {
                anyhow!(api::message(&response.body).unwrap_or_default())
            }
            _ => api::refusal(&response),
        };
        return Err(error.context(format!("{doing} review {id}")));
    }
    println!(
        "review {} {}",
        field(&response.body, "id"),
        field(&response.body, "status")
    );
    Ok(())
}

fn table(reviews: &[Value]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "TYPE",
        "STATUS",
        "CONNECTION",
        "REQUESTER",
        "GROUPS",
        "CREATED (local)",
    ]);
    for review in reviews {
        let groups: Vec<String> = review["review_groups_data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| format!("{}:{}", field(g, "group"), field(g, "status")))
            .collect();
        table.row(vec![
            field(review, "id"),
            field(review, "type"),
            field(review, "status"),
            field(review, "connection"),
            field(review, "requester"),
            groups.join(","),
            review["created_at"]
                .as_i64()
                .map_or_else(|| "-".into(), output::local_time),
        ]);
    }
    table
}

fn show_details(review: &Value) {
    if let Some(input) = review["input"].as_str() {
        println!("input:\n{input}");
    }
    if let Some(seconds) = review["access_duration_sec"].as_i64() {
        println!("access: {}", output::duration(seconds.saturating_mul(1000)));
    }
    if let Some(error) = review["error"].as_str() {
        println!("error: {error}");
    }
    if let Some(output) = review["output"].as_str() {
        println!("output:\n{output}");
    }
    for event in review["events"].as_array().into_iter().flatten() {
        println!(
            "{}  {}  {}{}  {}",
            event["at"]
                .as_i64()
                .map_or_else(|| "-".into(), output::local_time),
            field(event, "status"),
            field(event, "actor"),
            if event["forced"] == true {
                " (forced)"
            } else {
                ""
            },
            field(event, "note"),
        );
    }
}

/// Says that `what` on `name` waits for review `answer` (the gateway's 202)
/// and how a reviewer approves it.
pub(crate) fn announce(name: &str, what: &str, answer: &Value) {
    let id = field(answer, "id");
    let groups: Vec<String> = answer["review_groups_data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| field(g, "group"))
        .collect();
    eprintln!(
        "hoop: {what} on {name} is waiting for approval (review {id}, reviewers: {})",
        groups.join(", ")
    );
    eprintln!("  a reviewer approves with: hoop reviews approve {id}");
    eprintln!("  (see it with: hoop reviews show {id})");
}

/// Waits until review `id` leaves `waiting` (statuses), and returns it.
///
/// # Errors
///
/// A gateway that cannot be reached, or a review that ended refused
/// (`REJECTED`, `EXPIRED`, `REVOKED`).
pub(crate) async fn wait(api: &Api, id: &str, waiting: &[&str]) -> anyhow::Result<Value> {
    let path = format!("/api/reviews/{}", segment(id));
    loop {
        let review = api
            .get(&path)
            .await
            .with_context(|| format!("waiting for review {id}"))?;
        let status = field(&review, "status");
        if waiting.contains(&status.as_str()) {
            tokio::time::sleep(POLL).await;
            continue;
        }
        if ["REJECTED", "EXPIRED", "REVOKED"].contains(&status.as_str()) {
            let why = review["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            bail!("review {id} was {status}{why}");
        }
        return Ok(review);
    }
}
