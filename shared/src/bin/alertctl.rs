//! Operator commands that talk to the table directly: create it, make, list
//! and revoke app keys (the first one cannot come from the API it unlocks),
//! seed a demo channel and integrations. Used by `make run` and by hand (see
//! docs/configuration.md). Reads TABLE_NAME and the usual AWS variables.

use shared::api::{check_app_key_strength, new_app_key};
use shared::app::App;
use shared::hashing::random_hex;
use shared::ids::check_id;
use shared::intake::integrations::IntegrationKind;
use shared::model::{Channel, Integration, Role};
use shared::store::{now_ms, schema, Store};

const USAGE: &str = "usage: alertctl create-table | create-app-key [--key KEY] [--name NAME] [--role admin|responder|viewer] [--member-id ID] | list-app-keys | revoke-app-key APP_KEY_ID | demo";

#[tokio::main]
async fn main() {
    if let Err(message) = run(std::env::args().skip(1).collect()).await {
        eprintln!("alertctl: {message}");
        std::process::exit(1);
    }
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The value after `--name`; `Ok(None)` when the flag is absent, an error when
/// it has no value (a forgotten value must not quietly become a default).
fn flag(args: &[String], name: &str) -> Result<Option<String>, String> {
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    match args.get(at + 1) {
        Some(value) if !value.is_empty() && !value.starts_with("--") => Ok(Some(value.clone())),
        _ => Err(format!("{name} needs a value\n{USAGE}")),
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let command = args.first().ok_or(USAGE)?;
    let app = App::from_env().await?;
    let store = &app.store;
    let now_s = now_ms() / 1000;
    match command.as_str() {
        "create-table" => {
            let created = schema::create_table(store.client(), store.table())
                .await
                .map_err(text)?;
            eprintln!(
                "table {}: {}",
                store.table(),
                if created { "created" } else { "already there" }
            );
        }
        "create-app-key" => {
            let key = match flag(&args, "--key")? {
                Some(k) => {
                    check_app_key_strength(&k).map_err(|e| e.message().to_string())?;
                    k
                }
                None => new_app_key().map_err(text)?,
            };
            let name = flag(&args, "--name")?.unwrap_or_else(|| "bootstrap".into());
            // The bootstrap key (no --role) is admin: it makes the others.
            let role = match flag(&args, "--role")? {
                Some(r) => Role::parse(&r).ok_or("--role: must be admin, responder or viewer")?,
                None => Role::Admin,
            };
            let member = flag(&args, "--member-id")?;
            if let Some(m) = &member {
                check_id("member_id", m).map_err(|e| e.message().to_string())?;
            }
            let id = store
                .put_app_key_as(&key, &name, now_s, role, member.as_deref())
                .await
                .map_err(text)?;
            eprintln!(
                "app key {id} ({name}, {}) stored; the key is printed once, below",
                role.as_str()
            );
            // The key alone on the last line of stdout: scripts read it from there.
            println!("{key}");
        }
        "list-app-keys" => {
            println!("APP_KEY_ID\tCREATED_AT\tROLE\tNAME");
            for key in store.list_app_keys().await.map_err(text)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    key.app_key_id,
                    key.created_at,
                    key.role.as_str(),
                    key.name
                );
            }
        }
        "revoke-app-key" => {
            let id = args.get(1).ok_or(USAGE)?;
            check_id("app_key_id", id).map_err(|e| e.message().to_string())?;
            if !store.revoke_app_key(id).await.map_err(text)? {
                return Err("app_key_id: no app key has this id".into());
            }
            eprintln!("app key {id} revoked");
        }
        "demo" => demo(store, now_s).await?,
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

/// A demo channel with one integration of every kind. Prints one JSON line:
/// the standard integration's key and push path, and every vendor's push path.
async fn demo(store: &Store, now_s: i64) -> Result<(), String> {
    let channel = Channel {
        channel_id: random_hex(8).map_err(text)?,
        name: "Demo".into(),
        grouping: Default::default(),
        auto_close: true,
        created_at: now_s,
        storm_thresholds: Vec::new(),
        flapping: Default::default(),
    };
    store.create_channel(&channel).await.map_err(text)?;
    let mut standard = None;
    let mut vendor_push_paths = serde_json::Map::new();
    for kind in IntegrationKind::ALL {
        let integration = Integration {
            integration_id: random_hex(8).map_err(text)?,
            name: format!("Demo {}", kind.slug()),
            kind: kind.slug().into(),
            channel_id: Some(channel.channel_id.clone()),
            routes: None,
            routes_version: None,
            rate_limit: Default::default(),
            created_at: now_s,
            callback_token: None,
            client_secret: None,
            // The demo's CloudWatch fixtures are signed by a test certificate,
            // not by SNS: the demo integration skips the check.
            verify_signature: (kind == IntegrationKind::AwsCloudwatch).then_some(false),
            sns_topic_arns: Vec::new(),
            enrichment: Vec::new(),
            pipeline: Vec::new(),
            rules_version: None,
        };
        let key = shared::api::new_integration_key().map_err(text)?;
        store
            .create_integration(&integration, &key)
            .await
            .map_err(text)?;
        let push_path = format!("/event/push/alert/{}?integration_key={key}", kind.slug());
        if kind == IntegrationKind::Standard {
            standard = Some((integration.integration_id, key, push_path));
        } else {
            vendor_push_paths.insert(kind.slug().into(), push_path.into());
        }
    }
    let (integration_id, key, push_path) = standard.ok_or("no standard integration")?;
    let line = serde_json::json!({
        "channel_id": channel.channel_id,
        "integration_id": integration_id,
        "integration_key": key,
        "push_path": push_path,
        "vendor_push_paths": vendor_push_paths,
    });
    println!("{line}");
    Ok(())
}
