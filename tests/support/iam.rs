//! IAM as AWS applies it, emulated on the tests' DynamoDB clients: DynamoDB
//! Local enforces no policy, so a request the template does not grant would
//! pass every local test and fail only in AWS.
//!
//! Every handler the helpers drive (`call_push`, `call_api`, the notify
//! [`Pump`](crate::Pump), the HTTP front) runs on a client carrying a
//! [`Recorder`] for its function. The recorder names the IAM actions each
//! request needs (a transaction broken into its parts: `Put` -> `PutItem`,
//! `Update` -> `UpdateItem`, `Delete` -> `DeleteItem`, `ConditionCheck` ->
//! `ConditionCheckItem`, `Get` -> `GetItem`), records them, and refuses the
//! request, as AWS would with `AccessDeniedException`, when the function's
//! policy in `infra/template.yaml` lacks one (or the index it queries).
//! `tests/permissions.rs` compares what was sent with what is granted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::Value;
use shared::app::App;

use crate::template::{template, TEMPLATE};

/// Which function's code sends the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// Every `push-*` function (they share the push handler).
    Push,
    Management,
    Notify,
    Escalate,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::Push,
        Function::Management,
        Function::Notify,
        Function::Escalate,
    ];

    pub fn owns(self, binary: &str) -> bool {
        match self {
            Function::Push => binary.starts_with("push-"),
            Function::Management => binary == "management-api",
            Function::Notify => binary == "notify",
            Function::Escalate => binary == "escalate",
        }
    }
}

/// What one function may do: actions, and indexes it may query.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub actions: BTreeSet<String>,
    /// Index names, or `*` for every index.
    pub indexes: BTreeSet<String>,
}

impl Grant {
    fn allows(&self, need: &Need) -> bool {
        self.actions.contains(&need.action)
            && need
                .index
                .as_ref()
                .is_none_or(|i| self.indexes.contains(i) || self.indexes.contains("*"))
    }
}

/// Per template function (by logical id), its grant; see [`granted`].
pub fn grants() -> BTreeMap<String, (String, Grant)> {
    let t = template();
    t.functions
        .iter()
        .map(|(id, f)| {
            let indexes = f
                .policy_resources
                .iter()
                .filter_map(|r| {
                    let r = r.trim_end_matches('"');
                    r.rsplit_once("/index/").map(|(_, name)| name.to_string())
                })
                .collect();
            let grant = Grant {
                actions: f.actions.clone(),
                indexes,
            };
            (id.clone(), (t.binary(id, f).to_string(), grant))
        })
        .collect()
}

/// What every template function of `function` is granted (the intersection:
/// the push handler runs in each push function).
pub fn granted(function: Function) -> Grant {
    static GRANTED: LazyLock<BTreeMap<Function, Grant>> = LazyLock::new(|| {
        let all = grants();
        Function::ALL
            .into_iter()
            .map(|function| {
                let mut owned = all
                    .values()
                    .filter(|(b, _)| function.owns(b))
                    .map(|(_, g)| g);
                let first = owned
                    .next()
                    .unwrap_or_else(|| panic!("{TEMPLATE} declares no {function:?} function"))
                    .clone();
                let grant = owned.fold(first, |acc, g| Grant {
                    actions: acc.actions.intersection(&g.actions).cloned().collect(),
                    indexes: acc.indexes.intersection(&g.indexes).cloned().collect(),
                });
                (function, grant)
            })
            .collect()
    });
    GRANTED[&function].clone()
}

/// One action a request needs, with the index it reads (if any).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub action: String,
    pub index: Option<String>,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.index {
            Some(i) => write!(f, "{} on index {i}", self.action),
            None => f.write_str(&self.action),
        }
    }
}

/// The IAM actions one DynamoDB request needs, from its `X-Amz-Target`
/// operation and JSON body.
pub fn needs(operation: &str, body: &Value) -> Vec<Need> {
    let plain = |action: &str| Need {
        action: format!("dynamodb:{action}"),
        index: None,
    };
    match operation {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|part| {
                plain(match part.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => panic!("unknown transaction part {other}"),
                })
            })
            .collect(),
        "Query" | "Scan" => vec![Need {
            action: format!("dynamodb:{operation}"),
            index: body["IndexName"].as_str().map(str::to_string),
        }],
        other => vec![plain(other)],
    }
}

static SENT: LazyLock<Mutex<BTreeMap<Function, BTreeSet<Need>>>> = LazyLock::new(Mutex::default);
static DENIED: LazyLock<Mutex<Vec<String>>> = LazyLock::new(Mutex::default);

/// Every action `function`'s code has sent in this test process.
pub fn sent(function: Function) -> BTreeSet<Need> {
    SENT.lock()
        .expect("sent lock")
        .get(&function)
        .cloned()
        .unwrap_or_default()
}

/// Requests refused so far ("function: action"), in this test process.
pub fn denied() -> Vec<String> {
    DENIED.lock().expect("denied lock").clone()
}

/// Records, and refuses what the function's policy does not grant.
#[derive(Clone, Debug)]
pub struct Recorder(pub Function);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "IamRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let needs = needs(operation, &body);
        let grant = granted(self.0);
        let refused: Vec<String> = needs
            .iter()
            .filter(|n| !grant.allows(n))
            .map(|n| format!("{:?}: {n} (in {operation})", self.0))
            .collect();
        SENT.lock()
            .map_err(|_| "sent lock poisoned")?
            .entry(self.0)
            .or_default()
            .extend(needs);
        if refused.is_empty() {
            return Ok(());
        }
        eprintln!("emulated AccessDeniedException, not granted by {TEMPLATE}: {refused:?}");
        DENIED
            .lock()
            .map_err(|_| "denied lock poisoned")?
            .extend(refused.iter().cloned());
        Err(format!("AccessDeniedException (emulated from {TEMPLATE}): {refused:?}").into())
    }
}

/// `app` as `function` runs it: the same table, caches and queues, through
/// a client whose requests are recorded and checked against the template.
pub fn as_function(app: &App, function: Function) -> App {
    let config = app
        .store
        .client()
        .config()
        .to_builder()
        .interceptor(Recorder(function))
        .build();
    let mut app = app.clone();
    app.store = app
        .store
        .with_client(aws_sdk_dynamodb::Client::from_conf(config));
    app
}
