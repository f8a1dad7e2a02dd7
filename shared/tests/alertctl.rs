//! `alertctl`'s app-key commands as an operator runs them, against DynamoDB
//! Local (started by `make test`, which exports `AWS_ENDPOINT_URL_DYNAMODB`).

use std::process::{Command, Output};

use shared::hashing::{random_hex, sha256_hex};
use shared::store::config::app_keys::app_key_id;

fn alertctl(table: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alertctl"));
    command.args(args).env("TABLE_NAME", table);
    for (name, fallback) in [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var(name).is_err() {
            command.env(name, fallback);
        }
    }
    command.output().expect("alertctl runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The key is alone on the last line of stdout.
fn printed_key(out: &str) -> String {
    out.lines().last().unwrap_or_default().trim().to_string()
}

#[test]
fn app_keys_are_made_listed_and_revoked_from_the_command_line() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local"
    );
    let table = format!("t{}", random_hex(8).expect("randomness"));
    succeeded("create-table", alertctl(&table, &["create-table"]));

    // Weak supplied keys are refused without being repeated, and nothing is stored.
    for weak in [
        "hunter2",
        "hunter2hunter2hunter2hunter2hunter2",
        "0123456789abcdef0123456789abcdef+/",
    ] {
        let out = alertctl(&table, &["create-app-key", "--key", weak]);
        assert!(!out.status.success(), "{weak} was accepted");
        assert!(
            stderr(&out).contains("at least 32 characters"),
            "{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains(weak) && !stdout(&out).contains(weak));
    }
    // A forgotten value is an error, not a quietly generated key.
    let out = alertctl(&table, &["create-app-key", "--key"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--key needs a value"),
        "{}",
        stderr(&out)
    );
    let listed = succeeded("list-app-keys", alertctl(&table, &["list-app-keys"]));
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");

    let supplied = "Zq3_x-Lr8mN1vB6tY0wE5sD2fG7hJ4kP";
    let out = succeeded(
        "create-app-key --key",
        alertctl(
            &table,
            &["create-app-key", "--key", supplied, "--name", "ci"],
        ),
    );
    assert_eq!(printed_key(&out), supplied);
    let generated = printed_key(&succeeded(
        "create-app-key",
        alertctl(&table, &["create-app-key", "--name", "laptop"]),
    ));
    assert_eq!(generated.len(), 48, "192 random bits, hex: {generated}");

    let listed = succeeded("list-app-keys", alertctl(&table, &["list-app-keys"]));
    let supplied_id = app_key_id(&sha256_hex(supplied));
    let generated_id = app_key_id(&sha256_hex(&generated));
    for (id, name) in [(&supplied_id, "ci"), (&generated_id, "laptop")] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(id.as_str()) && l.ends_with(name)),
            "{id} {name} not in:\n{listed}"
        );
    }
    for secret in [
        supplied.to_string(),
        generated.clone(),
        sha256_hex(supplied),
        sha256_hex(&generated),
    ] {
        assert!(
            !listed.contains(&secret),
            "list-app-keys shows a key or hash"
        );
    }

    succeeded(
        "revoke-app-key",
        alertctl(&table, &["revoke-app-key", &supplied_id]),
    );
    let listed = succeeded("list-app-keys", alertctl(&table, &["list-app-keys"]));
    assert!(!listed.contains(&supplied_id) && listed.contains(&generated_id));
    let again = alertctl(&table, &["revoke-app-key", &supplied_id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("app_key_id: no app key has this id"));
    let malformed = alertctl(&table, &["revoke-app-key", "not/an/id"]);
    assert!(!malformed.status.success());
    assert!(stderr(&malformed).contains("app_key_id: must be"));
    assert!(!alertctl(&table, &["revoke-app-key"]).status.success());
}
