//! The final schedule, walked from change point to change point: the
//! calculators each say when they next change (a handoff, a restriction
//! edge, an override edge), the walk jumps to the earliest of them and asks
//! who is on call there. Contiguous shifts of one member (same source and
//! layer) come out merged.

use serde::Serialize;

use super::{CompiledSchedule, LATEST_SECOND, MAX_RANGE_SECS};
use crate::error::{ApiError, ApiResult};

/// How far `oncall` looks for the end of the current shift.
pub const ONCALL_HORIZON_SECS: i64 = MAX_RANGE_SECS;

/// `GET /api/schedules/{id}/oncall`: who is on call (nobody or one member)
/// and when that changes; `until` is `None` when it does not change within
/// [`ONCALL_HORIZON_SECS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnCall {
    pub member_ids: Vec<String>,
    pub until: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Layer,
    Override,
}

/// One item of `GET /api/schedules/{id}/shifts`. `layer` is the index of
/// the layer in `layers` (`None` for an override).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShiftItem {
    pub member_id: String,
    pub from: i64,
    pub to: i64,
    pub source: Source,
    pub layer: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Assignment<'a> {
    member_id: &'a str,
    source: Source,
    layer: Option<usize>,
}

impl CompiledSchedule {
    /// Who layer `index` puts on call at `at`, restrictions applied.
    fn layer_at(&self, index: usize, at: i64) -> Option<Assignment<'_>> {
        let layer = self.layers.get(index)?;
        if !layer.restrictions.allows(at) {
            return None;
        }
        let turn = layer.rotation.turn_at(at)?;
        Some(Assignment {
            member_id: layer.member_ids.get(turn.member)?,
            source: Source::Layer,
            layer: Some(index),
        })
    }

    fn final_at(&self, at: i64) -> Option<Assignment<'_>> {
        if let Some(member_id) = self.overrides.member_at(at) {
            return Some(Assignment {
                member_id,
                source: Source::Override,
                layer: None,
            });
        }
        (0..self.layers.len())
            .rev()
            .find_map(|i| self.layer_at(i, at))
    }

    /// The earliest moment after `at` at which any calculator changes.
    pub(super) fn next_change(&self, at: i64) -> Option<i64> {
        self.layers
            .iter()
            .flat_map(|l| [l.rotation.next_change(at), l.restrictions.next_change(at)])
            .chain([self.overrides.next_change(at)])
            .flatten()
            .min()
    }

    fn next_layer_change(&self, index: usize, at: i64) -> Option<i64> {
        let layer = self.layers.get(index)?;
        [
            layer.rotation.next_change(at),
            layer.restrictions.next_change(at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Who is on call at `at`, and until when.
    pub fn oncall(&self, at: i64) -> OnCall {
        let member = self.final_at(at).map(|a| a.member_id);
        let horizon = at.saturating_add(ONCALL_HORIZON_SECS);
        let mut t = at;
        let until = loop {
            match self.next_change(t) {
                Some(next) if next <= horizon => {
                    if self.final_at(next).map(|a| a.member_id) != member {
                        break Some(next);
                    }
                    t = next;
                }
                _ => break None,
            }
        };
        OnCall {
            member_ids: member.into_iter().map(str::to_string).collect(),
            until,
        }
    }

    /// The final schedule from `from` to `to` (at most 90 days), clipped to
    /// the range.
    pub fn shifts(&self, from: i64, to: i64) -> ApiResult<Vec<ShiftItem>> {
        check_range(from, to)?;
        Ok(walk(
            from,
            to,
            |t| self.final_at(t),
            |t| self.next_change(t),
        ))
    }

    /// One layer alone (the console's row per layer), restrictions applied.
    pub fn layer_shifts(&self, index: usize, from: i64, to: i64) -> ApiResult<Vec<ShiftItem>> {
        check_range(from, to)?;
        Ok(walk(
            from,
            to,
            |t| self.layer_at(index, t),
            |t| self.next_layer_change(index, t),
        ))
    }
}

/// The checks of a `shifts` query, naming `from` or `to`.
pub fn check_range(from: i64, to: i64) -> ApiResult<()> {
    if !(0..=LATEST_SECOND).contains(&from) {
        return Err(ApiError::invalid(format!(
            "from: must be unix seconds from 0 to {LATEST_SECOND}"
        )));
    }
    if to <= from || to - from > MAX_RANGE_SECS {
        return Err(ApiError::invalid(
            "to: must be after from, and at most 90 days after it",
        ));
    }
    Ok(())
}

fn walk<'a>(
    from: i64,
    to: i64,
    at: impl Fn(i64) -> Option<Assignment<'a>>,
    next_change: impl Fn(i64) -> Option<i64>,
) -> Vec<ShiftItem> {
    let mut items = Vec::new();
    let mut current = at(from);
    let mut run_from = from;
    let mut t = from;
    while t < to {
        // Every calculator reports a change strictly after `t`.
        let next = next_change(t).filter(|&n| n < to).unwrap_or(to);
        let here = if next < to { at(next) } else { None };
        if next == to || here != current {
            if let Some(a) = current {
                items.push(ShiftItem {
                    member_id: a.member_id.to_string(),
                    from: run_from,
                    to: next,
                    source: a.source,
                    layer: a.layer,
                });
            }
            current = here;
            run_from = next;
        }
        t = next;
    }
    items
}
