//! Title templates (SPEC section 3): `$a::$b`, `[TPL]` with `${name}`, and
//! `[TPL]` with a small Go-template subset. Rendering never fails the event:
//! a template that cannot be rendered falls back to the raw rule.

use std::collections::BTreeMap;

const TPL_PREFIX: &str = "[TPL]";
/// Rendering stops once the title is this long: the title is cut to 512
/// characters anyway, and a template must not be able to expand a 256 KiB
/// body into gigabytes (`{{.Title}}` repeated, or `${label}` over long values).
const RENDER_BUDGET_BYTES: usize = 4 * 512 + 8;
const NO_VALUE: &str = "<no value>";

pub struct TemplateContext<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub description: &'a str,
    pub event_status: &'a str,
    pub alert_key: &'a str,
    pub integration_name: &'a str,
}

pub fn render_title(rule: &str, ctx: &TemplateContext<'_>) -> String {
    if let Some(body) = rule.strip_prefix(TPL_PREFIX) {
        return render_tpl(body, rule, ctx).unwrap_or_else(|| rule.to_string());
    }
    render_segments(rule, ctx)
}

/// Form 1: split on `::`, replace `$label` segments, join with " / ".
fn render_segments(rule: &str, ctx: &TemplateContext<'_>) -> String {
    let segments: Vec<&str> = rule.split("::").collect();
    let has_variable = segments.iter().any(|s| s.trim_start().starts_with('$'));
    if segments.len() == 1 && !has_variable {
        return rule.to_string();
    }
    segments
        .iter()
        .map(|segment| {
            let trimmed = segment.trim();
            match trimmed
                .strip_prefix('$')
                .and_then(|name| ctx.labels.get(name))
            {
                Some(value) => value.clone(),
                None => trimmed.to_string(),
            }
        })
        .try_fold(String::new(), |mut out, segment| {
            if !out.is_empty() {
                out.push_str(" / ");
            }
            out.push_str(&segment);
            if out.len() > RENDER_BUDGET_BYTES {
                Err(out)
            } else {
                Ok(out)
            }
        })
        .unwrap_or_else(|full| full)
}

/// Forms 2 and 3 (they may be mixed). `None` means the template is malformed.
fn render_tpl(body: &str, raw_rule: &str, ctx: &TemplateContext<'_>) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    loop {
        if out.len() > RENDER_BUDGET_BYTES {
            return Some(out);
        }
        let next_dollar = rest.find("${");
        let next_action = rest.find("{{");
        let (at, is_action) = match (next_dollar, next_action) {
            (None, None) => {
                out.push_str(rest);
                return Some(out);
            }
            (Some(d), None) => (d, false),
            (None, Some(a)) => (a, true),
            (Some(d), Some(a)) => {
                if a < d {
                    (a, true)
                } else {
                    (d, false)
                }
            }
        };
        out.push_str(&rest[..at]);
        if is_action {
            let after = &rest[at + 2..];
            let end = after.find("}}")?;
            out.push_str(&eval_action(&after[..end], raw_rule, ctx)?);
            rest = &after[end + 2..];
        } else {
            let after = &rest[at + 2..];
            let end = after.find('}')?;
            let name = after[..end].trim();
            out.push_str(ctx.labels.get(name).map(String::as_str).unwrap_or(NO_VALUE));
            rest = &after[end + 1..];
        }
    }
}

/// One `{{ ... }}` action of the supported subset.
fn eval_action(action: &str, raw_rule: &str, ctx: &TemplateContext<'_>) -> Option<String> {
    let action = action
        .trim()
        .trim_start_matches('-')
        .trim_end_matches('-')
        .trim();
    if let Some(name) = action.strip_prefix(".Labels.") {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        return Some(ctx.labels.get(name).cloned().unwrap_or_default());
    }
    // `index .Labels "name"` reaches label names that are not Go identifiers.
    if let Some(args) = action.strip_prefix("index ") {
        let args = args.trim().strip_prefix(".Labels")?.trim();
        let name = args.strip_prefix('"')?.strip_suffix('"')?;
        return Some(ctx.labels.get(name).cloned().unwrap_or_default());
    }
    match action {
        ".Title" => Some(raw_rule.to_string()),
        ".Description" => Some(ctx.description.to_string()),
        ".EventStatus" => Some(ctx.event_status.to_string()),
        ".AlertKey" => Some(ctx.alert_key.to_string()),
        ".IntegrationName" => Some(ctx.integration_name.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(rule: &str, labels: &[(&str, &str)]) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        render_title(
            rule,
            &TemplateContext {
                labels: &labels,
                description: "disk full",
                event_status: "Critical",
                alert_key: "key-1",
                integration_name: "Prod pushes",
            },
        )
    }

    #[test]
    fn plain_title_is_untouched() {
        assert_eq!(render("CPU high on db1", &[]), "CPU high on db1");
        assert_eq!(render("costs $5", &[]), "costs $5");
    }

    #[test]
    fn segment_form_replaces_labels_and_joins() {
        let labels = [("resource", "10.0.0.1"), ("check", "latency")];
        assert_eq!(render("$resource::$check", &labels), "10.0.0.1 / latency");
        assert_eq!(
            render("$resource::static text", &labels),
            "10.0.0.1 / static text"
        );
        assert_eq!(render("$resource", &labels), "10.0.0.1");
    }

    #[test]
    fn segment_form_leaves_missing_labels_as_written() {
        assert_eq!(
            render("$resource::$missing", &[("resource", "a")]),
            "a / $missing"
        );
    }

    #[test]
    fn dollar_brace_form() {
        assert_eq!(
            render("[TPL]${host} is down in ${dc}", &[("host", "db1")]),
            "db1 is down in <no value>"
        );
    }

    #[test]
    fn go_template_form() {
        let labels = [("host", "db1")];
        assert_eq!(
            render(
                "[TPL]{{.Labels.host}}: {{ .EventStatus }} ({{.AlertKey}}, {{.IntegrationName}})",
                &labels
            ),
            "db1: Critical (key-1, Prod pushes)"
        );
        assert_eq!(render("[TPL]x{{.Labels.missing}}y", &labels), "xy");
        assert_eq!(render("[TPL]{{.Description}}", &labels), "disk full");
        assert_eq!(render(r#"[TPL]{{index .Labels "host"}}"#, &labels), "db1");
    }

    #[test]
    fn mixed_tpl_forms() {
        assert_eq!(
            render("[TPL]${a}-{{.Labels.b}}", &[("a", "1"), ("b", "2")]),
            "1-2"
        );
    }

    #[test]
    fn expansion_is_bounded() {
        let bomb = format!("[TPL]{}", "{{.Title}}".repeat(20_000));
        assert!(render(&bomb, &[]).len() <= 2 * RENDER_BUDGET_BYTES + bomb.len());
        let long = "x".repeat(2048);
        let labels = [("a", long.as_str())];
        let dollar = format!("[TPL]{}", "${a}".repeat(50_000));
        assert!(render(&dollar, &labels).len() <= RENDER_BUDGET_BYTES + 2048);
        let segments = vec!["$a"; 50_000].join("::");
        assert!(render(&segments, &labels).len() <= RENDER_BUDGET_BYTES + 2048 + 3);
    }

    #[test]
    fn malformed_templates_fall_back_to_the_raw_rule() {
        for rule in [
            "[TPL]{{.Labels.host",
            "[TPL]{{.Unknown}}",
            "[TPL]${host",
            "[TPL]{{index .Labels host}}",
        ] {
            assert_eq!(render(rule, &[("host", "db1")]), rule);
        }
    }
}
