//! Shared integrations (SPEC section 6): ordered route cases decide which
//! channels an event goes to; each matched channel gets its own alert and incident.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids::check_id;
use crate::rules::conditions::{ConditionGroups, Matcher, Subject};

pub const MAX_CASES: usize = 100;
pub const MAX_CHANNELS_PER_ROUTE: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCase {
    #[serde(rename = "if")]
    pub conditions: ConditionGroups,
    pub channel_ids: Vec<String>,
    #[serde(default)]
    pub fallthrough: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultRoute {
    pub channel_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routes {
    #[serde(default)]
    pub cases: Vec<RouteCase>,
    #[serde(default)]
    pub default: Option<DefaultRoute>,
}

impl Routes {
    /// Every channel id the routes name, once each, in order.
    pub fn channel_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let all = self
            .cases
            .iter()
            .flat_map(|c| c.channel_ids.iter())
            .chain(self.default.iter().flat_map(|d| d.channel_ids.iter()));
        for id in all {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }
}

pub struct CompiledRoutes {
    cases: Vec<(Matcher, Vec<String>, bool)>,
    default: Vec<String>,
}

fn check_channels(ids: &[String], at: &str) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > MAX_CHANNELS_PER_ROUTE {
        return Err(ApiError::invalid(format!(
            "{at}.channel_ids: 1 to {MAX_CHANNELS_PER_ROUTE} channels, got {}",
            ids.len()
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        check_id(&format!("{at}.channel_ids[{i}]"), id)?;
    }
    Ok(())
}

impl CompiledRoutes {
    /// What the cases' regexes and wildcards compile to (the regex budget).
    pub fn compiled_bytes(&self) -> usize {
        self.cases.iter().map(|(m, _, _)| m.compiled_bytes()).sum()
    }

    pub fn compile(routes: &Routes) -> ApiResult<Self> {
        if routes.cases.len() > MAX_CASES {
            return Err(ApiError::invalid(format!(
                "routes.cases: at most {MAX_CASES} cases"
            )));
        }
        if routes.cases.is_empty() && routes.default.is_none() {
            return Err(ApiError::invalid(
                "routes: needs at least one case or a default route",
            ));
        }
        let mut cases = Vec::with_capacity(routes.cases.len());
        for (i, case) in routes.cases.iter().enumerate() {
            let at = format!("routes.cases[{i}]");
            check_channels(&case.channel_ids, &at)?;
            let matcher = Matcher::compile(&case.conditions, &format!("{at}.if"))?;
            cases.push((matcher, case.channel_ids.clone(), case.fallthrough));
        }
        let default = match &routes.default {
            Some(d) => {
                check_channels(&d.channel_ids, "routes.default")?;
                d.channel_ids.clone()
            }
            None => Vec::new(),
        };
        Ok(CompiledRoutes { cases, default })
    }

    /// The channels this event goes to, once each, in route order. Empty: no
    /// case matched and there is no default route.
    pub fn channels_for(&self, subject: &Subject<'_>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut matched = false;
        for (matcher, channels, fallthrough) in &self.cases {
            if matcher.matches(subject) {
                matched = true;
                for c in channels {
                    if !out.contains(c) {
                        out.push(c.clone());
                    }
                }
                if !fallthrough {
                    break;
                }
            }
        }
        if matched {
            out
        } else {
            self.default.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventStatus;
    use crate::domain::event::StandardEvent;

    fn ev(labels: &[(&str, &str)]) -> StandardEvent {
        StandardEvent {
            title: "t".into(),
            event_status: EventStatus::Warning,
            alert_key: "k".into(),
            description: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            event_time_ms: 1,
        }
    }

    fn routes(json: &str) -> CompiledRoutes {
        CompiledRoutes::compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn first_match_fallthrough_and_default() {
        let r = routes(
            r#"{"cases": [
                {"if": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]], "channel_ids": ["a"], "fallthrough": true},
                {"if": [[{"key": "labels.team", "oper": "IN", "vals": ["db"]}]], "channel_ids": ["b"]},
                {"if": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]], "channel_ids": ["c"]}
              ], "default": {"channel_ids": ["d"]}}"#,
        );
        assert_eq!(
            r.channels_for(&Subject::of_event(
                &ev(&[("env", "prod"), ("team", "db")]),
                None
            )),
            ["a", "b"]
        );
        assert_eq!(
            r.channels_for(&Subject::of_event(&ev(&[("env", "prod")]), None)),
            ["a", "c"]
        );
        assert_eq!(
            r.channels_for(&Subject::of_event(&ev(&[("team", "db")]), None)),
            ["b"]
        );
        assert_eq!(r.channels_for(&Subject::of_event(&ev(&[]), None)), ["d"]);
    }

    #[test]
    fn no_match_and_no_default_is_empty() {
        let r = routes(
            r#"{"cases": [{"if": [[{"key": "title", "oper": "IN", "vals": ["x"]}]], "channel_ids": ["a"]}]}"#,
        );
        assert!(r
            .channels_for(&Subject::of_event(&ev(&[]), None))
            .is_empty());
    }

    #[test]
    fn validation_names_the_place() {
        for (json, place) in [
            (r#"{"cases": []}"#, "routes"),
            (
                r#"{"cases": [{"if": [[{"key": "title", "oper": "IN", "vals": ["x"]}]], "channel_ids": []}]}"#,
                "routes.cases[0].channel_ids",
            ),
            (
                r#"{"cases": [{"if": [[{"key": "nope", "oper": "IN", "vals": ["x"]}]], "channel_ids": ["a"]}]}"#,
                "routes.cases[0].if[0][0].key",
            ),
            (
                r#"{"default": {"channel_ids": []}}"#,
                "routes.default.channel_ids",
            ),
            (
                r#"{"default": {"channel_ids": ["a", "not/an/id"]}}"#,
                "routes.default.channel_ids[1]: must be 1 to 64 characters",
            ),
        ] {
            let routes: Routes = serde_json::from_str(json).unwrap();
            let err = CompiledRoutes::compile(&routes).err().unwrap();
            assert!(
                err.message().starts_with(place),
                "{} vs {place}",
                err.message()
            );
        }
    }
}
