//! A member (SPEC 14): a person the on-call chain can page, by email and by
//! the ids each IM platform mentions them with. Checked here, without I/O;
//! stored by `store/config/members.rs`, served by `api/oncall.rs`.
//!
//! The IM ids end up inside each platform's mention syntax (`<@U…>`, `<at
//! user_id="ou_…">`), so their character sets are narrow on purpose: an id
//! that passes cannot close the markup it is put in.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const NAME_MAX_CHARS: usize = 100;
/// RFC 5321's limit on a forward path.
pub const EMAIL_MAX_CHARS: usize = 254;
pub const DEFAULT_TIME_ZONE: &str = "UTC";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: String,
    pub name: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// An IANA name; the member's own clock (the console shows it).
    pub time_zone: String,
    pub im: MemberIm,
    pub created_at: i64,
}

/// Each platform's id for the member; absent: named in plain text there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberIm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feishu_open_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dingtalk_mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wecom_user_id: Option<String>,
}

impl MemberIm {
    /// (field name, value) of each id that is set.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("slack_user_id", &self.slack_user_id),
            ("feishu_open_id", &self.feishu_open_id),
            ("dingtalk_mobile", &self.dingtalk_mobile),
            ("wecom_user_id", &self.wecom_user_id),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_deref().map(|v| (name, v)))
        .collect()
    }

    /// Builds from stored (field, value) pairs; unknown fields are ignored.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> MemberIm {
        let mut im = MemberIm::default();
        for (name, value) in fields {
            match name {
                "slack_user_id" => im.slack_user_id = Some(value),
                "feishu_open_id" => im.feishu_open_id = Some(value),
                "dingtalk_mobile" => im.dingtalk_mobile = Some(value),
                "wecom_user_id" => im.wecom_user_id = Some(value),
                _ => {}
            }
        }
        im
    }

    /// Every id against its platform's rule; the error names `im.FIELD`.
    pub fn validate(&self) -> ApiResult<()> {
        if let Some(id) = &self.slack_user_id {
            // Slack user ids: U… (W… on Enterprise Grid), upper-case alphanumerics.
            let ok = (3..=21).contains(&id.len())
                && (id.starts_with('U') || id.starts_with('W'))
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err(ApiError::invalid(
                    "im.slack_user_id: must be U or W and 2 to 20 more characters from [A-Z0-9]",
                ));
            }
        }
        if let Some(id) = &self.feishu_open_id {
            let ok = id.strip_prefix("ou_").is_some_and(|rest| {
                (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if !ok {
                return Err(ApiError::invalid(
                    "im.feishu_open_id: must be ou_ and 1 to 64 characters from [0-9a-zA-Z]",
                ));
            }
        }
        if let Some(mobile) = &self.dingtalk_mobile {
            if !is_phone_number(mobile, 20) {
                return Err(ApiError::invalid(
                    "im.dingtalk_mobile: must be 5 to 20 digits, optionally after + and with - between groups",
                ));
            }
        }
        if let Some(id) = &self.wecom_user_id {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
            if !ok {
                return Err(ApiError::invalid(
                    "im.wecom_user_id: must be 1 to 64 characters from [0-9a-zA-Z_.@-]",
                ));
            }
        }
        Ok(())
    }
}

/// `+` first at most, digits, single `-` between digit groups; `max_digits` digits at most.
fn is_phone_number(text: &str, max_digits: usize) -> bool {
    let body = text.strip_prefix('+').unwrap_or(text);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    (5..=max_digits).contains(&digits)
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && !body.starts_with('-')
        && !body.ends_with('-')
        && !body.contains("--")
}

/// 1 to 100 characters once trimmed; answers the trimmed name.
pub fn check_name(field: &str, name: &str) -> ApiResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field}: must be 1 to {NAME_MAX_CHARS} characters, none of them control characters"
        )));
    }
    Ok(name.to_string())
}

/// A mail address as SMTP takes it: `local@domain`, at most 254 characters,
/// printable ASCII without spaces, quotes or brackets in the local part, and
/// a domain of dot-separated labels (letters, digits, inner hyphens) with at
/// least one dot. Strict on purpose: it goes into an SMTP envelope.
pub fn check_email(field: &str, email: &str) -> ApiResult<()> {
    let refused = || {
        ApiError::invalid(format!(
            "{field}: must be an address like someone@example.org (at most {EMAIL_MAX_CHARS} characters)"
        ))
    };
    if email.len() > EMAIL_MAX_CHARS {
        return Err(refused());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(refused)?;
    let local_ok = (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(refused())
    }
}

pub fn check_phone(field: &str, phone: &str) -> ApiResult<()> {
    if is_phone_number(phone, 20) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field}: must be 5 to 20 digits, optionally after + and with - between groups"
        )))
    }
}

/// An IANA zone name the tz database knows.
pub fn check_time_zone(field: &str, name: &str) -> ApiResult<()> {
    jiff::tz::TimeZone::get(name).map(|_| ()).map_err(|_| {
        ApiError::invalid(format!(
            "{field}: not an IANA time zone name (e.g. Europe/Berlin, UTC)"
        ))
    })
}

impl Member {
    /// Every field against its rule (the id is the service's own).
    pub fn validate(&self) -> ApiResult<()> {
        check_name("name", &self.name)?;
        check_email("email", &self.email)?;
        if let Some(phone) = &self.phone {
            check_phone("phone", phone)?;
        }
        check_time_zone("time_zone", &self.time_zone)?;
        self.im.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "x_y-z@sub-domain.example.org",
        ] {
            assert!(check_email("email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
            ".a@x.com",
            "a..b@x.com",
            "a\r\nRCPT TO:<x@y.z>@x.com",
            "<a@x.com>",
            &format!("{}@x.com", "a".repeat(65)),
            &format!("a@{}.com", "b".repeat(250)),
        ] {
            let err = check_email("email", bad).unwrap_err();
            assert_eq!(err.code(), "InvalidParameter");
            assert!(err.message().starts_with("email: must be"));
            assert!(bad.is_empty() || !err.message().contains(bad), "{bad}");
        }
    }

    #[test]
    fn im_ids() {
        let ok = MemberIm {
            slack_user_id: Some("U024BE7LH".into()),
            feishu_open_id: Some("ou_7d8a6e6df7621556ce0d21922b676706".into()),
            dingtalk_mobile: Some("+86-13800000000".into()),
            wecom_user_id: Some("zhang.san@corp".into()),
        };
        assert!(ok.validate().is_ok());
        let cases: [(MemberIm, &str); 5] = [
            (
                MemberIm {
                    slack_user_id: Some("<!channel>".into()),
                    ..Default::default()
                },
                "im.slack_user_id:",
            ),
            (
                MemberIm {
                    slack_user_id: Some("u024be7lh".into()),
                    ..Default::default()
                },
                "im.slack_user_id:",
            ),
            (
                MemberIm {
                    feishu_open_id: Some("ou_\"></at><at user_id=\"all".into()),
                    ..Default::default()
                },
                "im.feishu_open_id:",
            ),
            (
                MemberIm {
                    dingtalk_mobile: Some("call me".into()),
                    ..Default::default()
                },
                "im.dingtalk_mobile:",
            ),
            (
                MemberIm {
                    wecom_user_id: Some("@all ".into()),
                    ..Default::default()
                },
                "im.wecom_user_id:",
            ),
        ];
        for (im, prefix) in cases {
            let err = im.validate().unwrap_err();
            assert!(err.message().starts_with(prefix), "{}", err.message());
        }
        assert_eq!(ok.fields().len(), 4);
        let back = MemberIm::from_fields(
            ok.fields()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(back, ok);
    }

    #[test]
    fn names_phones_and_zones() {
        assert_eq!(check_name("name", "  Alice ").unwrap(), "Alice");
        assert!(check_name("name", " ").is_err());
        assert!(check_name("name", "a\u{7}b").is_err());
        assert!(check_name("name", &"x".repeat(101)).is_err());
        assert!(check_phone("phone", "+49-30-1234567").is_ok());
        assert!(check_phone("phone", "12-34").is_err());
        assert!(check_phone("phone", "+49--30123456").is_err());
        assert!(check_time_zone("time_zone", "Europe/Berlin").is_ok());
        let err = check_time_zone("time_zone", "Mars/Olympus").unwrap_err();
        assert!(!err.message().contains("Mars"));
    }
}
