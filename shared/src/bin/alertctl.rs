//! Operator commands that talk to the table directly: create it, make the
//! first app key, seed a demo channel and integration. Used by `make run` and
//! by hand (see the README). Reads TABLE_NAME and the usual AWS variables.

use shared::app::App;
use shared::hashing::random_hex;
use shared::model::{Channel, Integration};
use shared::store::{now_ms, schema};

const USAGE: &str =
    "usage: alertctl create-table | create-app-key [--key KEY] [--name NAME] | demo";

#[tokio::main]
async fn main() {
    if let Err(message) = run(std::env::args().skip(1).collect()).await {
        eprintln!("alertctl: {message}");
        std::process::exit(1);
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
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
                .map_err(|e| e.to_string())?;
            eprintln!(
                "table {}: {}",
                store.table(),
                if created { "created" } else { "already there" }
            );
        }
        "create-app-key" => {
            let key = match flag(&args, "--key").filter(|k| !k.is_empty()) {
                Some(k) => k,
                None => random_hex(24).map_err(|e| e.to_string())?,
            };
            let name = flag(&args, "--name").unwrap_or_else(|| "bootstrap".into());
            store
                .put_app_key(&key, &name, now_s)
                .await
                .map_err(|e| e.to_string())?;
            println!("{key}");
        }
        "demo" => {
            let channel = Channel {
                channel_id: random_hex(8).map_err(|e| e.to_string())?,
                name: "Demo".into(),
                grouping: Default::default(),
                auto_close: true,
                created_at: now_s,
            };
            store
                .create_channel(&channel)
                .await
                .map_err(|e| e.to_string())?;
            let integration = Integration {
                integration_id: random_hex(8).map_err(|e| e.to_string())?,
                name: "Demo standard".into(),
                kind: "standard".into(),
                channel_id: channel.channel_id.clone(),
                created_at: now_s,
                callback_token: None,
            };
            let key = shared::api::new_integration_key().map_err(|e| e.to_string())?;
            store
                .create_integration(&integration, &key)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({
                    "channel_id": channel.channel_id,
                    "integration_id": integration.integration_id,
                    "integration_key": key,
                    "push_path": format!("/event/push/alert/standard?integration_key={key}"),
                })
            );
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
