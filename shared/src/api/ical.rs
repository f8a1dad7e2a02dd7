//! A schedule's iCalendar feed (SPEC 14, RFC 5545): the final schedule's
//! next 90 days, one VEVENT per merged shift, times in UTC. Lines end in
//! CRLF and are folded at 75 octets without splitting a UTF-8 character;
//! TEXT values escape `\`, `;`, `,` and newlines.
//!
//! The window starts at the current UTC midnight, not at `now`, so a feed
//! fetched twice in a day is the same but for DTSTAMP, and a shift's UID
//! (from the schedule, the member and the shift's start) stays put while
//! calendar apps refresh.

use jiff::Timestamp;

use crate::engine::schedule::{ShiftItem, Source, MAX_RANGE_SECS};
use crate::hashing::stable_key;

pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";
const MAX_LINE_OCTETS: usize = 75;

/// The feed's range for a fetch at `now`: today's UTC midnight plus 90 days.
pub fn feed_window(now: i64) -> (i64, i64) {
    let from = now.div_euclid(86_400) * 86_400;
    (from, from + MAX_RANGE_SECS)
}

/// The calendar. `member_name` gives a member's display name (the id is
/// shown when it has none, e.g. a member deleted meanwhile).
pub fn render(
    schedule_id: &str,
    schedule_name: &str,
    items: &[ShiftItem],
    member_name: &dyn Fn(&str) -> Option<String>,
    now: i64,
) -> String {
    let mut out = String::new();
    let mut line = |content: String| {
        out.push_str(&fold(&content));
        out.push_str("\r\n");
    };
    line("BEGIN:VCALENDAR".into());
    line("VERSION:2.0".into());
    line("PRODID:-//alert-intake//on-call schedule//EN".into());
    line("CALSCALE:GREGORIAN".into());
    line("METHOD:PUBLISH".into());
    line(format!("X-WR-CALNAME:{}", escape_text(schedule_name)));
    let stamp = utc(now);
    for item in items {
        let name = member_name(&item.member_id).unwrap_or_else(|| item.member_id.clone());
        let uid = stable_key(&[schedule_id, &item.member_id, &item.from.to_string()]);
        let what = match (item.source, item.layer) {
            (Source::Override, _) => "override".to_string(),
            (Source::Layer, Some(i)) => format!("layer {}", i + 1),
            (Source::Layer, None) => "layer".to_string(),
        };
        line("BEGIN:VEVENT".into());
        line(format!("UID:{uid}@alert-intake"));
        line(format!("DTSTAMP:{stamp}"));
        line(format!("DTSTART:{}", utc(item.from)));
        line(format!("DTEND:{}", utc(item.to)));
        line(format!(
            "SUMMARY:{}",
            escape_text(&format!("On call: {name}"))
        ));
        line(format!(
            "DESCRIPTION:{}",
            escape_text(&format!("{schedule_name} ({what})"))
        ));
        line("TRANSP:TRANSPARENT".into());
        line("END:VEVENT".into());
    }
    line("END:VCALENDAR".into());
    out
}

/// `20261204T090000Z`.
fn utc(second: i64) -> String {
    Timestamp::from_second(second)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| "19700101T000000Z".into())
}

/// RFC 5545 3.3.11: backslash, semicolon and comma are escaped, a newline
/// (CRLF, CR or LF) becomes `\n`; other control characters are dropped
/// (TEXT allows none but HTAB).
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 3.1: a line longer than 75 octets continues on lines that
/// start with one space, each at most 75 octets with it. Breaks fall on
/// character boundaries. The result has no trailing CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 60 * 3);
    let mut rest = line;
    let mut limit = MAX_LINE_OCTETS;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = MAX_LINE_OCTETS - 1;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undo folding, as a reader does (RFC 5545 3.1).
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn short_lines_are_left_alone() {
        assert_eq!(fold("SUMMARY:On call"), "SUMMARY:On call");
        let exact = "X".repeat(75);
        assert_eq!(fold(&exact), exact);
    }

    #[test]
    fn long_lines_fold_at_75_octets() {
        let line = format!("DESCRIPTION:{}", "a".repeat(200));
        let folded = fold(&line);
        let parts: Vec<&str> = folded.split("\r\n").collect();
        assert_eq!(parts[0].len(), 75);
        for part in &parts[1..] {
            assert!(part.starts_with(' '));
            assert!(part.len() <= 75);
        }
        assert_eq!(unfold(&folded), line);
    }

    #[test]
    fn folding_never_splits_a_utf8_character() {
        // 3-octet characters after a 9-octet prefix: 75 is not a boundary.
        for prefix in ["SUMMARY:", "SUMMARY:x", "SUMMARY:xy"] {
            let line = format!("{prefix}{}", "值班".repeat(60));
            let folded = fold(&line);
            for part in folded.split("\r\n") {
                assert!(part.len() <= 75, "{}", part.len());
                assert!(std::str::from_utf8(part.as_bytes()).is_ok());
            }
            assert_eq!(unfold(&folded), line);
        }
        // A 4-octet emoji straddling the limit moves whole to the next line.
        let line = format!("{}{}", "a".repeat(73), "🚨");
        assert_eq!(fold(&line), format!("{}\r\n 🚨", "a".repeat(73)));
    }

    #[test]
    fn text_escaping() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg\u{7}h\ti"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ngh\ti"
        );
        assert_eq!(escape_text("Zoë: 值班"), "Zoë: 值班");
    }

    #[test]
    fn a_feed_has_one_event_per_shift_with_stable_uids() {
        let items = vec![
            ShiftItem {
                member_id: "alice".into(),
                from: 1_764_838_800,
                to: 1_764_925_200,
                source: Source::Layer,
                layer: Some(0),
            },
            ShiftItem {
                member_id: "bob".into(),
                from: 1_764_925_200,
                to: 1_764_932_400,
                source: Source::Override,
                layer: None,
            },
        ];
        let names = |id: &str| (id == "alice").then(|| "Alice, DBA; on call".to_string());
        let feed = render("s1", "Primary", &items, &names, 1_764_840_000);
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        assert!(!feed.replace("\r\n", "").contains('\n'), "CRLF only");
        assert_eq!(feed.matches("BEGIN:VEVENT").count(), 2);
        assert!(feed.contains("DTSTART:20251204T090000Z\r\n"));
        assert!(feed.contains("DTEND:20251205T090000Z\r\n"));
        assert!(feed.contains("DTSTAMP:20251204T092000Z\r\n"));
        assert!(feed.contains("SUMMARY:On call: Alice\\, DBA\\; on call\r\n"));
        assert!(feed.contains("SUMMARY:On call: bob\r\n"), "no name: the id");
        let again = render("s1", "Primary", &items, &names, 1_764_840_999);
        let uids = |f: &str| -> Vec<String> {
            f.lines()
                .filter(|l| l.starts_with("UID:"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(uids(&feed), uids(&again));
        assert_ne!(uids(&feed)[0], uids(&feed)[1]);
        assert_eq!(
            feed_window(1_764_840_000),
            (1_764_806_400, 1_764_806_400 + 90 * 86_400)
        );
    }
}
